// Dub: a sale tracked against the customer who came through a referral link.
function handler(webhook) {
  if (webhook.eventType !== "payment.succeeded") return webhook;
  const p = webhook.payload.data;
  webhook.url = "https://api.dub.co/track/sale";
  webhook.payload = {
    customerExternalId: p.customer.customer_id,
    amount: p.total_amount,
    currency: p.currency.toLowerCase(),
    paymentProcessor: "custom",
    eventName: p.subscription_id ? "Subscription payment" : "Purchase",
    invoiceId: p.invoice_id,
    metadata: { payment_id: p.payment_id },
  };
  return webhook;
}
