// AutoSend: an email confirming each refund.
function handler(webhook) {
  if (webhook.eventType !== "refund.succeeded") return webhook;
  const r = webhook.payload.data;
  const amount = ((r.amount || 0) / 100).toLocaleString("en-US", { style: "currency", currency: r.currency || "USD" });
  webhook.url = "https://api.autosend.com/v1/mails/send";
  webhook.payload = {
    to: { email: r.customer.email, name: r.customer.name },
    from: { email: "support@yourdomain.example", name: "Support" },
    subject: `Your refund of ${amount} is on its way`,
    html: `<p>${r.is_partial ? "Part of your payment" : "Your payment"} ${r.payment_id} was refunded: ${amount}.</p>`,
  };
  return webhook;
}
