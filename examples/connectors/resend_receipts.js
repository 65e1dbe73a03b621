// Resend: a receipt email for each successful payment.
function handler(webhook) {
  if (webhook.eventType === "payment.succeeded") {
    const p = webhook.payload.data;
    const total = (p.total_amount / 100).toFixed(2);
    webhook.url = "https://api.resend.com/emails";
    webhook.payload = {
      from: "billing@yourdomain.example",
      to: [p.customer.email],
      subject: `Receipt for $${total}`,
      html: `<p>Hi ${p.customer.name},</p>
<p>We received your payment of <strong>$${total}</strong> on ${new Date(webhook.payload.timestamp).toLocaleDateString()}.</p>
<p>Payment ${p.payment_id} · ${p.payment_method || "card"}</p>`,
    };
  }
  return webhook;
}
