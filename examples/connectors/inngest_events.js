// Inngest (event key URL): each subscription and payment event as an Inngest event.
function handler(webhook) {
  if (!/^(payment|subscription)\./.test(webhook.eventType)) return webhook;
  const d = webhook.payload.data;
  webhook.payload = {
    name: `dodo/${webhook.eventType}`,
    id: `${webhook.eventType}:${d.payment_id || d.subscription_id}`,
    ts: Date.parse(webhook.payload.timestamp),
    data: { customer_id: d.customer?.customer_id, email: d.customer?.email, status: d.status },
  };
  return webhook;
}
