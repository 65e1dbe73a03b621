// HubSpot (CRM API): a contact created or updated for each successful payment.
function handler(webhook) {
  if (webhook.eventType !== "payment.succeeded") return webhook;
  const p = webhook.payload.data;
  const [firstname, ...rest] = (p.customer.name || "").split(" ");
  webhook.url = "https://api.hubapi.com/crm/v3/objects/contacts";
  webhook.payload = {
    properties: {
      email: p.customer.email,
      firstname,
      lastname: rest.join(" "),
      country: p.billing?.country,
      last_payment_amount: (p.total_amount / 100).toFixed(2),
      last_payment_date: new Date(p.created_at).toISOString().slice(0, 10),
    },
  };
  return webhook;
}
