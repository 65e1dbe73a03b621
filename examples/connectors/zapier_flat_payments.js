// Zapier (catch hook): flat fields a Zap can map, for payments and refunds.
function handler(webhook) {
  const d = webhook.payload.data;
  if (webhook.eventType.startsWith("payment.")) {
    webhook.payload = {
      event: webhook.eventType,
      payment_id: d.payment_id,
      amount: (d.total_amount / 100).toFixed(2),
      currency: d.currency,
      customer_email: d.customer.email,
      customer_name: d.customer.name,
      country: d.billing?.country,
      created: new Date(d.created_at).toLocaleString(),
    };
  } else if (webhook.eventType.startsWith("refund.")) {
    webhook.payload = {
      event: webhook.eventType,
      refund_id: d.refund_id,
      payment_id: d.payment_id,
      amount: ((d.amount || 0) / 100).toFixed(2),
      customer_email: d.customer?.email,
    };
  }
  return webhook;
}
