// MailerLite: every paying customer added to (or updated in) the customers group.
function handler(webhook) {
  if (webhook.eventType !== "payment.succeeded" && webhook.eventType !== "subscription.active") return webhook;
  const d = webhook.payload.data;
  webhook.url = "https://connect.mailerlite.com/api/subscribers";
  webhook.payload = {
    email: d.customer.email,
    fields: { name: d.customer.name, country: d.billing?.country, last_event: webhook.eventType },
    groups: ["customers"],
  };
  return webhook;
}
