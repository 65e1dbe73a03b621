// Close CRM: a lead with its contact for each new subscription.
function handler(webhook) {
  if (webhook.eventType !== "subscription.active") return webhook;
  const s = webhook.payload.data;
  webhook.url = "https://api.close.com/api/v1/lead/";
  webhook.payload = {
    name: s.customer.name,
    status_label: "Customer",
    contacts: [{ name: s.customer.name, emails: [{ email: s.customer.email, type: "office" }] }],
    custom: {
      "Dodo subscription": s.subscription_id,
      "Monthly value": (s.recurring_pre_tax_amount / 100).toLocaleString("en-US", { style: "currency", currency: s.currency }),
    },
  };
  return webhook;
}
