// Send refunds to your own endpoint with extra headers.
function handler(webhook) {
  if (webhook.eventType === "refund.succeeded") {
    webhook.url = "https://hooks.example.com/refunds";
    webhook.headers = { "X-Source": "dodo-transform", "X-Refund-Id": webhook.payload.data.refund_id };
    console.log("refund", webhook.payload.data.refund_id, "for", webhook.payload.data.payment_id);
  }
  return webhook;
}
