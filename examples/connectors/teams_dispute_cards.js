// Microsoft Teams (workflow webhook): an Adaptive Card for each dispute event.
function handler(webhook) {
  if (!webhook.eventType.startsWith("dispute.")) return webhook;
  const d = webhook.payload.data;
  webhook.payload = {
    type: "message",
    attachments: [{
      contentType: "application/vnd.microsoft.card.adaptive",
      content: {
        type: "AdaptiveCard",
        version: "1.4",
        body: [
          { type: "TextBlock", weight: "Bolder", size: "Medium", text: `Dispute ${d.dispute_status.replace("dispute_", "")}` },
          { type: "FactSet", facts: [
            { title: "Amount", value: `${Number(d.amount) / 100} ${d.currency}` },
            { title: "Payment", value: d.payment_id },
            { title: "Opened", value: new Date(d.created_at).toLocaleString("en-US", { timeZone: "UTC" }) },
          ] },
        ],
      },
    }],
  };
  return webhook;
}
