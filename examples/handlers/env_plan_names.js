// Read per-transform settings from webhook.env (set in transforms.toml beside this file).
function handler(webhook) {
  if (webhook.eventType === "subscription.active") {
    const s = webhook.payload.data;
    webhook.url = "https://api.segment.io/v1/track";
    webhook.payload = {
      userId: s.customer.customer_id,
      event: "Subscription Started",
      properties: { plan: webhook.env.PLAN_NAME || s.product_id, source: webhook.env.SOURCE },
      timestamp: webhook.payload.timestamp
    };
  }
  return webhook;
}
