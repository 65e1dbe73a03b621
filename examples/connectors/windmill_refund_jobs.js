// Windmill (run a script by webhook): refunds become job arguments; the token goes in the
// Authorization header, from transforms.toml.
function handler(webhook) {
  if (webhook.eventType !== "refund.succeeded" && webhook.eventType !== "refund.failed") return webhook;
  const r = webhook.payload.data;
  webhook.payload = {
    refund_id: r.refund_id,
    payment_id: r.payment_id,
    succeeded: webhook.eventType === "refund.succeeded",
    amount: r.amount,
    currency: r.currency,
    partial: r.is_partial,
    email: r.customer?.email,
  };
  return webhook;
}
