// SendGrid (Mail Send API): tell the customer a payment failed and how to retry.
function handler(webhook) {
  if (webhook.eventType !== "payment.failed") return webhook;
  const p = webhook.payload.data;
  const amount = (p.total_amount / 100).toLocaleString("en-US", { style: "currency", currency: p.currency });
  webhook.url = "https://api.sendgrid.com/v3/mail/send";
  webhook.payload = {
    personalizations: [{ to: [{ email: p.customer.email, name: p.customer.name }] }],
    from: { email: "billing@yourdomain.example", name: "Billing" },
    subject: `Your payment of ${amount} did not go through`,
    content: [{
      type: "text/plain",
      value: `Hi ${p.customer.name}, your payment of ${amount} failed (${p.error_message || "declined"}). Retry at ${p.payment_link}.`,
    }],
  };
  return webhook;
}
