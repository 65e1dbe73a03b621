// n8n (webhook trigger): every event, with a summary on top of the Dodo body.
function handler(webhook) {
  webhook.payload = {
    summary: `${webhook.eventType} at ${new Date(webhook.payload.timestamp).toLocaleString("en-US", { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" })}`,
    type: webhook.eventType,
    business_id: webhook.payload.business_id,
    data: webhook.payload.data,
  };
  return webhook;
}
