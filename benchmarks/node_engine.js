// The same handler file run by Node.js (V8), for comparison with dodo-transform's QuickJS sandbox.
//   node benchmarks/node_engine.js HANDLER.js EVENT.json ROUNDS EVENTS
// Prints the median microseconds per event over ROUNDS rounds of EVENTS events, each event a
// JSON string in and a JSON string out, as the QuickJS floor does.
const fs = require("fs");
const [handlerPath, eventPath, rounds, events] = process.argv.slice(2);
const handler = new Function(fs.readFileSync(handlerPath, "utf8") + "\nreturn handler;")();
const body = fs.readFileSync(eventPath, "utf8");
const eventType = JSON.parse(body).type;
const input = JSON.stringify({ method: "POST", url: "", eventType, payload: JSON.parse(body),
                               cancel: false, headers: {}, env: {} });
const perRound = [];
for (let r = 0; r < Number(rounds); r++) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < Number(events); i++) JSON.stringify(handler(JSON.parse(input)));
  perRound.push(Number(process.hrtime.bigint() - start) / 1000 / Number(events));
}
perRound.sort((a, b) => a - b);
console.log(perRound[Math.floor(perRound.length / 2)].toFixed(2));
