// Loops: an event per subscription change, for the customer's email journeys.
function handler(webhook) {
  const names = {
    "subscription.active": "subscriptionStarted",
    "subscription.renewed": "subscriptionRenewed",
    "subscription.cancelled": "subscriptionCancelled",
  };
  const eventName = names[webhook.eventType];
  if (!eventName) return webhook;
  const s = webhook.payload.data;
  webhook.url = "https://app.loops.so/api/v1/events/send";
  webhook.payload = {
    email: s.customer.email,
    eventName,
    eventProperties: {
      plan: s.product_id,
      nextBilling: new Date(s.next_billing_date).toLocaleDateString("en-US", { year: "numeric", month: "long", day: "numeric" }),
    },
  };
  return webhook;
}
