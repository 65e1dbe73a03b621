// One payment, two Segment calls: identify the customer, then track the order.
function handler(webhook) {
  if (webhook.eventType !== "payment.succeeded") return webhook;
  const p = webhook.payload.data;
  const identify = Object.assign({}, webhook, {
    url: "https://api.segment.io/v1/identify",
    payload: { userId: p.customer.customer_id, traits: { email: p.customer.email, name: p.customer.name } }
  });
  const track = Object.assign({}, webhook, {
    url: "https://api.segment.io/v1/track",
    payload: {
      userId: p.customer.customer_id,
      event: "Order Completed",
      properties: { order_id: p.payment_id, revenue: p.total_amount / 100, currency: p.currency },
      timestamp: webhook.payload.timestamp
    }
  });
  return [identify, track];
}
