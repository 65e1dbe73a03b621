// Customer.io (Track API): payment and subscription events on the customer's profile.
function handler(webhook) {
  const d = webhook.payload.data;
  if (!d.customer || !/^(payment|subscription)\./.test(webhook.eventType)) return webhook;
  webhook.url = `https://track.customer.io/api/v1/customers/${encodeURIComponent(d.customer.customer_id)}/events`;
  webhook.payload = {
    name: webhook.eventType.replace(".", "_"),
    data: {
      email: d.customer.email,
      amount: d.total_amount ?? d.recurring_pre_tax_amount,
      currency: d.currency,
      status: d.status,
    },
    timestamp: Math.floor(Date.parse(webhook.payload.timestamp) / 1000),
  };
  return webhook;
}
