// Evaluates flags through the real JavaScript OpenFeature SDK and OFREP provider.
// Usage: node ofrep_client.mjs '{"baseUrl": ..., "key": ..., "evaluations": [{flag, type, default, context}]}'
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const options = JSON.parse(process.argv[2]);
await OpenFeature.setProviderAndWait(
  new OFREPProvider({ baseUrl: options.baseUrl, headers: [['Authorization', `Bearer ${options.key}`]] }),
);
const client = OpenFeature.getClient();
const getters = {
  boolean: (f, d, c) => client.getBooleanDetails(f, d, c),
  string: (f, d, c) => client.getStringDetails(f, d, c),
  number: (f, d, c) => client.getNumberDetails(f, d, c),
};
const results = [];
for (const { flag, type, default: fallback, context } of options.evaluations) {
  const details = await getters[type](flag, fallback, context ?? {});
  results.push({ flag, value: details.value, reason: details.reason, variant: details.variant ?? null,
                 errorCode: details.errorCode ?? null });
}
console.log(JSON.stringify(results));
await OpenFeature.close();
