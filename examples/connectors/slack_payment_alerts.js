// Slack (incoming webhook): a text message per payment event. Like the snippets on
// Dodo's Slack page, it never sets webhook.url: the Slack connector supplies it.
function handler(webhook) {
  const p = webhook.payload.data;
  const amount = () => (p.total_amount / 100).toLocaleString("en-US", { style: "currency", currency: p.currency });
  switch (webhook.eventType) {
    case "payment.succeeded":
      webhook.payload = {
        text: `✅ Payment received: ${amount()} from ${p.customer.email} on ${new Date(p.created_at).toLocaleDateString()}`,
      };
      break;
    case "payment.failed":
      webhook.payload = {
        text: `❌ Payment failed: ${amount()} from ${p.customer.email} (${p.error_message || "no reason given"})`,
      };
      break;
  }
  return webhook;
}
