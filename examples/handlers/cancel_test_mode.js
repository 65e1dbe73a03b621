// Drop events you never want in Segment: here, Dodo's test-mode events (webhook.mode is
// "test" for those its test-mode endpoint signed, see docs/going-live.md), and everything but
// payments.
function handler(webhook) {
  if (webhook.mode === "test" || !webhook.eventType.startsWith("payment.")) {
    webhook.cancel = true;
    return webhook;
  }
  webhook.url = "https://api.segment.io/v1/track";
  webhook.payload = {
    userId: webhook.payload.data.customer.customer_id,
    event: webhook.eventType === "payment.succeeded" ? "Payment Completed" : "Payment Attempted",
    properties: { status: webhook.payload.data.status, payment_id: webhook.payload.data.payment_id },
    timestamp: webhook.payload.timestamp
  };
  return webhook;
}
