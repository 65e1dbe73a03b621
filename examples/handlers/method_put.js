// Upsert the customer record in a CRM with PUT.
function handler(webhook) {
  if (webhook.eventType === "subscription.updated") {
    const s = webhook.payload.data;
    webhook.method = "PUT";
    webhook.url = "https://crm.example.com/customers/" + s.customer.customer_id;
    webhook.payload = { email: s.customer.email, plan: s.product_id, seats: s.quantity };
  }
  return webhook;
}
