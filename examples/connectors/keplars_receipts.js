// Keplars: a templated receipt, its date spelled out ("August 14, 2026") as V8 writes it.
function handler(webhook) {
  if (webhook.eventType !== "payment.succeeded") return webhook;
  const data = webhook.payload.data || {};
  const paidOn = new Date(webhook.payload.timestamp).toLocaleDateString("en-US", {
    year: "numeric", month: "long", day: "numeric",
  });
  webhook.url = "https://api.keplars.com/api/v1/send-email/high";
  webhook.payload = {
    to: [data.customer?.email],
    from: "billing@mail.yourdomain.example",
    template_id: "your-receipt-template-id",
    params: {
      customer_name: data.customer?.name,
      amount: ((data.total_amount || 0) / 100).toFixed(2),
      currency: data.currency || "USD",
      paid_on: paidOn,
    },
  };
  return webhook;
}
