// Discord (channel webhook): an embed per subscription change. The URL comes from the
// connector, so the handler leaves webhook.url alone.
function handler(webhook) {
  const s = webhook.payload.data;
  const colours = { "subscription.active": 0x2ecc71, "subscription.cancelled": 0xe74c3c, "subscription.on_hold": 0xf1c40f };
  if (!(webhook.eventType in colours)) return webhook;
  const price = (s.recurring_pre_tax_amount / 100).toLocaleString("en-US", { style: "currency", currency: s.currency });
  webhook.payload = {
    embeds: [{
      title: webhook.eventType.replace("subscription.", "Subscription ").replace("_", " "),
      color: colours[webhook.eventType],
      fields: [
        { name: "Customer", value: s.customer.email, inline: true },
        { name: "Price", value: `${price} / ${s.payment_frequency_interval.toLowerCase()}`, inline: true },
        { name: "Next billing", value: new Date(s.next_billing_date).toLocaleDateString("en-US", { month: "short", day: "numeric", year: "numeric" }) },
      ],
      timestamp: webhook.payload.timestamp,
    }],
  };
  return webhook;
}
