// A browser app's flags under Node 20: the real OpenFeature web SDK and OFREP web provider, with
// the `eventsource` package standing in for the browser's EventSource.
// Usage: node ofrep_web_client.mjs '{"baseUrl": ..., "key": ..., "flag": ..., "targetingKey": ...}'
// Prints one JSON line when ready and one per configuration change: {"event", "value", "reason"}.
import { EventSource } from 'eventsource';
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

globalThis.EventSource = EventSource;
const options = JSON.parse(process.argv[2]);
const client = OpenFeature.getClient();
const report = (event) => {
  const details = client.getBooleanDetails(options.flag, false);
  console.log(JSON.stringify({ event, value: details.value, reason: details.reason }));
};
client.addHandler(ProviderEvents.ConfigurationChanged, () => report('changed'));
await OpenFeature.setContext({ targetingKey: options.targetingKey });
await OpenFeature.setProviderAndWait(
  new OFREPWebProvider({
    baseUrl: options.baseUrl,
    headers: [['Authorization', `Bearer ${options.key}`]],
    cacheMode: 'disabled',
    changeDetection: 'sse',
  }),
);
report('ready');
process.stdin.resume();
process.stdin.on('end', async () => { await OpenFeature.close(); process.exit(0); });
