// The Powertools peer of `make bench`: POST /orders behind the same HTTP
// contract as the Go service (Idempotency-Key header, JSON order body, 201
// with the order as JSON, the stored answer replayed to a retry), made
// idempotent by Powertools for AWS Lambda (TypeScript) idempotency with its
// DynamoDB persistence layer, as a Lambda function would use it: the key
// from the header (eventKeyJmesPath), the body hash checked on a retry
// (payloadValidationJmesPath), 24 h retention, no local cache (a retry that
// reaches another execution environment), the in-progress expiry from a
// Lambda context with 10 s remaining (the function timeout of template.yaml).
//
// The idempotent function validates the body (the same rules as
// internal/orders, in short), prices it, and writes one order item with
// PutItem conditioned on a new order id: so a create is three single-item
// writes (Powertools' INPROGRESS put, the order, Powertools' COMPLETED
// update), the protocol Powertools documents.
//
// Environment: DYNAMODB_ENDPOINT (DynamoDB Local), ORDERS_TABLE,
// IDEMPOTENCY_TABLE (key "id", both tables made by the bench). It listens on
// 127.0.0.1, on PORT or a free port, and prints "listening on http://ADDR"
// to stderr once it accepts connections.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { makeIdempotent, IdempotencyConfig } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { IdempotencyAlreadyInProgressError, IdempotencyValidationError } from '@aws-lambda-powertools/idempotency';

const endpoint = process.env.DYNAMODB_ENDPOINT;
if (!endpoint) {
  console.error('DYNAMODB_ENDPOINT is not set');
  process.exit(2);
}
const ordersTable = process.env.ORDERS_TABLE;
const idemTable = process.env.IDEMPOTENCY_TABLE;
const client = new DynamoDBClient({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  maxAttempts: 3,
});

const STATES = ['ACT', 'NSW', 'NT', 'QLD', 'SA', 'TAS', 'VIC', 'WA'];
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// validate returns a list of problems of the order body b (empty when valid).
function validate(b) {
  const errs = [];
  const text = (o, name, ptr, required, max) => {
    const v = o[name];
    if (v === undefined) { if (required) errs.push(`${ptr}/${name}: is required`); return ''; }
    if (typeof v !== 'string') { errs.push(`${ptr}/${name}: must be a string`); return ''; }
    const s = v.trim();
    if (required && s === '') errs.push(`${ptr}/${name}: must not be empty`);
    if ([...s].length > max) errs.push(`${ptr}/${name}: too long`);
    return s;
  };
  const party = (name) => {
    const p = b[name];
    if (!isObj(p)) { errs.push(`/${name}: must be an object`); return; }
    text(p, 'name', `/${name}`, true, 100);
    const a = p.address;
    if (!isObj(a)) { errs.push(`/${name}/address: must be an object`); return; }
    const ptr = `/${name}/address`;
    text(a, 'line1', ptr, true, 100);
    text(a, 'line2', ptr, false, 100);
    text(a, 'suburb', ptr, true, 60);
    if (!STATES.includes(text(a, 'state', ptr, true, 100))) errs.push(`${ptr}/state: unknown state`);
    if (!/^[0-9]{4}$/.test(text(a, 'postcode', ptr, true, 100))) errs.push(`${ptr}/postcode: must be 4 digits`);
    if (text(a, 'country', ptr, true, 100) !== 'AU') errs.push(`${ptr}/country: must be AU`);
  };
  if (!isObj(b)) return ['the body must be a JSON object'];
  party('sender');
  party('receiver');
  const pc = b.parcel;
  if (!isObj(pc)) errs.push('/parcel: must be an object');
  else {
    for (const [n, max] of [['weight_kg', 25], ['length_cm', 120], ['width_cm', 120], ['height_cm', 120]]) {
      const v = pc[n];
      if (typeof v !== 'number' || !(v > 0) || v > max) errs.push(`/parcel/${n}: must be a number in (0, ${max}]`);
    }
    text(pc, 'description', '/parcel', false, 200);
  }
  return errs;
}

// price is the interstate-metro lane of internal/orders' pricing: base 10.95
// and 1.50 per started 500 g of chargeable weight.
function price(p) {
  const cubicKg = (p.length_cm * p.width_cm * p.height_cm) / 4000;
  const steps = Math.ceil(Math.max(p.weight_kg, cubicKg) / 0.5);
  return { amount: (10.95 + steps * 1.5).toFixed(2), currency: 'AUD' };
}

const trimParty = (p) => ({
  name: p.name.trim(),
  address: Object.fromEntries(Object.entries(p.address).map(([k, v]) => [k, v.trim()])),
});

// createOrder is the function Powertools makes idempotent: it receives
// {key, body} (the raw body text) and returns {statusCode, body}.
async function createOrder(event) {
  let b;
  try {
    b = JSON.parse(event.body);
  } catch {
    return { statusCode: 400, body: JSON.stringify({ title: 'Malformed request body' }) };
  }
  const errs = validate(b);
  if (errs.length > 0) {
    return { statusCode: 400, body: JSON.stringify({ title: 'Invalid order', errors: errs }) };
  }
  const order = {
    order_id: randomBytes(16).toString('hex'),
    status: 'booked',
    sender: trimParty(b.sender),
    receiver: trimParty(b.receiver),
    parcel: b.parcel,
    price: price(b.parcel),
    created_at: new Date().toISOString(),
  };
  const addr = (a) => ({ M: Object.fromEntries(Object.entries(a).map(([k, v]) => [k, { S: v }])) });
  const partyItem = (p) => ({ M: { name: { S: p.name }, address: addr(p.address) } });
  const pc = order.parcel;
  const parcel = {
    weight_g: { N: String(Math.round(pc.weight_kg * 1000)) },
    length_mm: { N: String(Math.round(pc.length_cm * 10)) },
    width_mm: { N: String(Math.round(pc.width_cm * 10)) },
    height_mm: { N: String(Math.round(pc.height_cm * 10)) },
  };
  if (pc.description) parcel.description = { S: pc.description };
  await client.send(new PutItemCommand({
    TableName: ordersTable,
    Item: {
      order_id: { S: order.order_id },
      status: { S: order.status },
      sender: partyItem(order.sender),
      receiver: partyItem(order.receiver),
      parcel: { M: parcel },
      price: { M: { amount: { S: order.price.amount }, currency: { S: order.price.currency } } },
      created_at: { S: order.created_at },
    },
    ConditionExpression: 'attribute_not_exists(order_id)',
  }));
  return { statusCode: 201, body: JSON.stringify(order) + '\n', location: `/orders/${order.order_id}` };
}

const idempotent = makeIdempotent(createOrder, {
  persistenceStore: new DynamoDBPersistenceLayer({ tableName: idemTable, awsSdkV3Client: client }),
  config: new IdempotencyConfig({
    eventKeyJmesPath: 'key',
    payloadValidationJmesPath: 'body',
    throwOnNoIdempotencyKey: true,
    expiresAfterSeconds: 24 * 3600,
  }),
});

// lambdaContext stands for the context Lambda passes: Powertools takes the
// in-progress expiry from its remaining time.
function lambdaContext() {
  const deadline = Date.now() + 10_000;
  return {
    functionName: 'createorder',
    awsRequestId: randomBytes(8).toString('hex'),
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/orders') {
    send(res, 404, '{"title":"Not found"}');
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    let key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || key === '') {
      send(res, 400, '{"title":"Idempotency-Key missing"}');
      return;
    }
    if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
    try {
      const out = await idempotent({ key, body: Buffer.concat(chunks).toString('utf8') }, lambdaContext());
      send(res, out.statusCode, out.body, out.location ? { Location: out.location } : {});
    } catch (err) {
      if (err instanceof IdempotencyAlreadyInProgressError) send(res, 409, '{"title":"Request in progress"}');
      else if (err instanceof IdempotencyValidationError) send(res, 422, '{"title":"Idempotency-Key reused"}');
      else {
        console.error(err);
        send(res, 503, '{"title":"Unavailable"}');
      }
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const a = server.address();
  console.error(`listening on http://${a.address}:${a.port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
