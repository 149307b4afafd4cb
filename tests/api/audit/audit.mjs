// Runs graphql-http's server audit against URL (argv[2]), sending the key in
// IDGRAPH_KEY and the purpose "support" with every request, and prints one JSON
// line per audit result: {"id", "name", "status", "reason"}.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const headers = {
  authorization: `Bearer ${process.env.IDGRAPH_KEY}`,
  'x-purpose': 'support',
};

function fetchWithKey(input, init = {}) {
  const merged = new Headers(init.headers);
  for (const [name, value] of Object.entries(headers)) merged.set(name, value);
  return fetch(input, { ...init, headers: merged });
}

const results = await auditServer({ url, fetchFn: fetchWithKey });
for (const result of results) {
  console.log(
    JSON.stringify({
      id: result.id,
      name: result.name,
      status: result.status,
      reason: result.status === 'ok' ? '' : result.reason,
    }),
  );
}
