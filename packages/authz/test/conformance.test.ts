/**
 * Conformance suite: (policies, connection or request, expected decision), written from Istio's documented
 * AuthorizationPolicy semantics (istio.io: Authorization Policy reference, Conditions, Normalization; ambient
 * L4 enforcement). Each case names the behaviour it pins.
 */
import {
  type AuthorizationPolicy,
  compilePolicies,
  type DecisionReason,
  type EnforcementTarget,
  type EngineOptions,
  type RequestAttributes,
} from '../src/index.js';
import { ap, CONN, HTTPBIN, id, req } from './helpers.js';

interface Case {
  name: string;
  policies: AuthorizationPolicy[];
  layer: 'L4' | 'L7';
  attrs?: Partial<RequestAttributes>;
  target?: EnforcementTarget;
  options?: EngineOptions;
  expect: 'allow' | 'deny';
  reason?: DecisionReason;
  by?: string;
  rule?: number;
}

const allowAll = (name = 'allow-all', ns = 'foo') => ap(name, { rules: [{}] }, { ns });
const denyAll = (name = 'deny-all', ns = 'foo') => ap(name, { action: 'DENY', rules: [{}] }, { ns });
/** ALLOW with one rule built from a single source. */
const allowFrom = (source: object, name = 'allow') => ap(name, { rules: [{ from: [{ source }] }] });
const allowTo = (operation: object, name = 'allow') => ap(name, { rules: [{ to: [{ operation }] }] });
const allowWhen = (when: object[], name = 'allow') => ap(name, { rules: [{ when: when as never }] });
const denyTo = (operation: object, name = 'deny') => ap(name, { action: 'DENY', rules: [{ to: [{ operation }] }] });
const denyFrom = (source: object, name = 'deny') => ap(name, { action: 'DENY', rules: [{ from: [{ source }] }] });
const denyWhen = (when: object[], name = 'deny') => ap(name, { action: 'DENY', rules: [{ when: when as never }] });
const NOID = { sourceIdentity: null };
const WAYPOINT: EnforcementTarget = {
  waypoint: { gateway: { namespace: 'foo', name: 'waypoint' }, service: { namespace: 'foo', name: 'httpbin' } },
};

const cases: Case[] = [
  // --- empty policies and defaults ---
  { name: 'no policies: L4 allowed', policies: [], layer: 'L4', expect: 'allow', reason: 'no-allow-policies' },
  { name: 'no policies: L7 allowed', policies: [], layer: 'L7', expect: 'allow', reason: 'no-allow-policies' },
  {
    name: 'spec {} (ALLOW, no rules) denies everything in scope',
    policies: [ap('allow-nothing', {})],
    layer: 'L7',
    expect: 'deny',
    reason: 'no-allow-match',
  },
  {
    name: 'spec {} denies at L4 too',
    policies: [ap('allow-nothing', {})],
    layer: 'L4',
    expect: 'deny',
    reason: 'no-allow-match',
  },
  {
    name: 'ALLOW with rules: [] denies like no rules',
    policies: [ap('allow-nothing', { rules: [] })],
    layer: 'L7',
    expect: 'deny',
  },
  {
    name: 'rules: [{}] allows everything',
    policies: [allowAll()],
    layer: 'L7',
    expect: 'allow',
    reason: 'allow-policy',
    by: 'foo/allow-all',
    rule: 0,
  },
  {
    name: 'rules: [{}] allows a plaintext connection',
    policies: [allowAll()],
    layer: 'L4',
    attrs: NOID,
    expect: 'allow',
  },
  {
    name: 'DENY rules: [{}] denies everything',
    policies: [denyAll()],
    layer: 'L7',
    expect: 'deny',
    reason: 'deny-policy',
    by: 'foo/deny-all',
  },
  { name: 'DENY rules: [{}] denies at L4', policies: [denyAll()], layer: 'L4', expect: 'deny', reason: 'deny-policy' },
  {
    name: 'only an AUDIT policy: allowed',
    policies: [ap('audit', { action: 'AUDIT', rules: [{}] })],
    layer: 'L7',
    expect: 'allow',
    reason: 'no-allow-policies',
  },
  {
    name: 'ALLOW in another namespace does not apply',
    policies: [ap('allow-nothing', {}, { ns: 'bar' })],
    layer: 'L7',
    expect: 'allow',
    reason: 'no-allow-policies',
  },
  {
    name: 'ALLOW whose selector does not match does not apply',
    policies: [ap('allow-nothing', { selector: { matchLabels: { app: 'other' } } })],
    layer: 'L7',
    expect: 'allow',
    reason: 'no-allow-policies',
  },
  {
    name: 'empty matchLabels selects every workload of the namespace',
    policies: [ap('allow-nothing', { selector: { matchLabels: {} } })],
    layer: 'L7',
    expect: 'deny',
  },

  // --- precedence ---
  {
    name: 'DENY wins over a matching ALLOW',
    policies: [allowAll(), denyAll()],
    layer: 'L7',
    expect: 'deny',
    by: 'foo/deny-all',
  },
  {
    name: 'non-matching DENY, matching ALLOW: allowed',
    policies: [allowAll(), denyTo({ paths: ['/admin'] })],
    layer: 'L7',
    expect: 'allow',
    by: 'foo/allow-all',
  },
  {
    name: 'ALLOW policies present, none matches: denied',
    policies: [allowFrom({ namespaces: ['bar'] }), allowTo({ ports: ['9090'] }, 'allow2')],
    layer: 'L7',
    expect: 'deny',
    reason: 'no-allow-match',
  },
  {
    name: 'any one of several ALLOW policies suffices',
    policies: [allowFrom({ namespaces: ['bar'] }), allowTo({ ports: ['8080'] }, 'allow2')],
    layer: 'L7',
    expect: 'allow',
    by: 'foo/allow2',
  },
  {
    name: 'AUDIT never changes the decision (deny stays deny)',
    policies: [ap('audit', { action: 'AUDIT', rules: [{}] }), ap('allow-nothing', {})],
    layer: 'L7',
    expect: 'deny',
  },
  {
    name: 'CUSTOM deny wins over ALLOW',
    policies: [allowAll(), ap('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] })],
    layer: 'L7',
    options: { customProvider: () => 'deny' },
    expect: 'deny',
    reason: 'custom-deny',
    by: 'foo/ext',
  },
  {
    name: 'CUSTOM allow cannot bypass DENY',
    policies: [denyAll(), ap('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] })],
    layer: 'L7',
    options: { customProvider: () => 'allow' },
    expect: 'deny',
    reason: 'deny-policy',
  },
  {
    name: 'CUSTOM allow then no ALLOW match: denied',
    policies: [
      allowFrom({ namespaces: ['bar'] }),
      ap('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] }),
    ],
    layer: 'L7',
    options: { customProvider: () => true },
    expect: 'deny',
    reason: 'no-allow-match',
  },
  {
    name: 'CUSTOM not matching: provider not consulted',
    policies: [
      ap('ext', {
        action: 'CUSTOM',
        provider: { name: 'opa' },
        rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }],
      }),
    ],
    layer: 'L7',
    options: { customProvider: () => 'deny' },
    expect: 'allow',
  },
  {
    name: 'CUSTOM matching without a configured provider fails closed',
    policies: [ap('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] })],
    layer: 'L7',
    expect: 'deny',
    reason: 'custom-error',
  },
  {
    name: 'CUSTOM provider that throws fails closed',
    policies: [ap('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] })],
    layer: 'L7',
    options: {
      customProvider: () => {
        throw new Error('down');
      },
    },
    expect: 'deny',
    reason: 'custom-error',
  },
  {
    name: 'CUSTOM is not enforced at L4',
    policies: [ap('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] })],
    layer: 'L4',
    options: { customProvider: () => 'deny' },
    expect: 'allow',
  },
  {
    name: 'first matching rule is reported',
    policies: [
      ap('allow', {
        rules: [{ from: [{ source: { namespaces: ['bar'] } }] }, { to: [{ operation: { ports: ['8080'] } }] }, {}],
      }),
    ],
    layer: 'L7',
    expect: 'allow',
    rule: 1,
  },

  // --- Source: principals ---
  {
    name: 'principals exact match',
    policies: [allowFrom({ principals: ['cluster.local/ns/foo/sa/sleep'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'principals exact mismatch',
    policies: [allowFrom({ principals: ['cluster.local/ns/foo/sa/other'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'principals values are ORed',
    policies: [allowFrom({ principals: ['cluster.local/ns/foo/sa/a', 'cluster.local/ns/foo/sa/sleep'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'principals prefix',
    policies: [allowFrom({ principals: ['cluster.local/ns/foo/*'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'principals prefix mismatch',
    policies: [allowFrom({ principals: ['cluster.local/ns/bar/*'] })],
    layer: 'L4',
    expect: 'deny',
  },
  { name: 'principals suffix', policies: [allowFrom({ principals: ['*/sa/sleep'] })], layer: 'L4', expect: 'allow' },
  {
    name: 'principals presence with identity',
    policies: [allowFrom({ principals: ['*'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'principals presence without identity',
    policies: [allowFrom({ principals: ['*'] })],
    layer: 'L4',
    attrs: NOID,
    expect: 'deny',
  },
  {
    name: 'principals never match a plaintext caller',
    policies: [allowFrom({ principals: ['cluster.local/ns/foo/sa/sleep'] })],
    layer: 'L7',
    attrs: NOID,
    expect: 'deny',
  },
  {
    name: 'principals from a SPIFFE URI identity of another trust domain',
    policies: [allowFrom({ principals: ['cluster.local/ns/foo/sa/sleep'] })],
    layer: 'L4',
    attrs: { sourceIdentity: 'spiffe://other.td/ns/foo/sa/sleep' },
    expect: 'deny',
  },
  {
    name: 'notPrincipals: listed caller excluded',
    policies: [allowFrom({ notPrincipals: ['cluster.local/ns/foo/sa/sleep'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'notPrincipals: other caller included',
    policies: [allowFrom({ notPrincipals: ['cluster.local/ns/foo/sa/other'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'notPrincipals: a caller without identity matches',
    policies: [allowFrom({ notPrincipals: ['cluster.local/ns/foo/sa/sleep'] })],
    layer: 'L4',
    attrs: NOID,
    expect: 'allow',
  },
  {
    name: 'DENY notPrincipals ["*"] denies plaintext (require mTLS)',
    policies: [denyFrom({ notPrincipals: ['*'] })],
    layer: 'L4',
    attrs: NOID,
    expect: 'deny',
  },
  {
    name: 'DENY notPrincipals ["*"] lets mTLS through',
    policies: [denyFrom({ notPrincipals: ['*'] })],
    layer: 'L4',
    expect: 'allow',
  },

  // --- Source: namespaces ---
  { name: 'namespaces match', policies: [allowFrom({ namespaces: ['foo'] })], layer: 'L4', expect: 'allow' },
  { name: 'namespaces mismatch', policies: [allowFrom({ namespaces: ['bar'] })], layer: 'L4', expect: 'deny' },
  { name: 'namespaces prefix', policies: [allowFrom({ namespaces: ['fo*'] })], layer: 'L4', expect: 'allow' },
  {
    name: 'namespaces without identity do not match',
    policies: [allowFrom({ namespaces: ['foo'] })],
    layer: 'L4',
    attrs: NOID,
    expect: 'deny',
  },
  { name: 'notNamespaces excludes', policies: [allowFrom({ notNamespaces: ['foo'] })], layer: 'L4', expect: 'deny' },
  {
    name: 'notNamespaces includes others',
    policies: [allowFrom({ notNamespaces: ['bar'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'DENY from other namespaces only',
    policies: [denyFrom({ notNamespaces: ['foo'] })],
    layer: 'L4',
    attrs: { sourceIdentity: id('bar', 'x') },
    expect: 'deny',
  },

  // --- Source: serviceAccounts ---
  {
    name: 'serviceAccounts ns/sa',
    policies: [allowFrom({ serviceAccounts: ['foo/sleep'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'serviceAccounts name only means the policy namespace',
    policies: [allowFrom({ serviceAccounts: ['sleep'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'serviceAccounts name only does not match another namespace',
    policies: [allowFrom({ serviceAccounts: ['sleep'] })],
    layer: 'L4',
    attrs: { sourceIdentity: id('bar', 'sleep') },
    expect: 'deny',
  },
  {
    name: 'serviceAccounts mismatch',
    policies: [allowFrom({ serviceAccounts: ['foo/other'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'serviceAccounts without identity',
    policies: [allowFrom({ serviceAccounts: ['foo/sleep'] })],
    layer: 'L4',
    attrs: NOID,
    expect: 'deny',
  },
  {
    name: 'notServiceAccounts excludes',
    policies: [allowFrom({ notServiceAccounts: ['foo/sleep'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'notServiceAccounts includes plaintext',
    policies: [allowFrom({ notServiceAccounts: ['foo/sleep'] })],
    layer: 'L4',
    attrs: NOID,
    expect: 'allow',
  },

  // --- Source: ipBlocks / remoteIpBlocks ---
  { name: 'ipBlocks single address', policies: [allowFrom({ ipBlocks: ['10.0.0.5'] })], layer: 'L4', expect: 'allow' },
  { name: 'ipBlocks CIDR', policies: [allowFrom({ ipBlocks: ['10.0.0.0/24'] })], layer: 'L4', expect: 'allow' },
  { name: 'ipBlocks CIDR miss', policies: [allowFrom({ ipBlocks: ['10.0.1.0/24'] })], layer: 'L4', expect: 'deny' },
  {
    name: 'ipBlocks /0 matches any IPv4',
    policies: [allowFrom({ ipBlocks: ['0.0.0.0/0'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'ipBlocks with host bits set is the network',
    policies: [allowFrom({ ipBlocks: ['10.0.0.77/24'] })],
    layer: 'L4',
    expect: 'allow',
  },
  { name: 'notIpBlocks excludes', policies: [allowFrom({ notIpBlocks: ['10.0.0.0/8'] })], layer: 'L4', expect: 'deny' },
  {
    name: 'notIpBlocks includes others',
    policies: [allowFrom({ notIpBlocks: ['192.168.0.0/16'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'IPv4 block matches a v4-mapped IPv6 peer address',
    policies: [allowFrom({ ipBlocks: ['10.0.0.0/8'] })],
    layer: 'L4',
    attrs: { sourceIp: '::ffff:10.0.0.5' },
    expect: 'allow',
  },
  {
    name: 'v4-mapped block matches a plain IPv4 peer',
    policies: [allowFrom({ ipBlocks: ['::ffff:10.0.0.0/104'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'IPv6 block matches an IPv6 peer',
    policies: [allowFrom({ ipBlocks: ['fd00:10::/32'] })],
    layer: 'L4',
    attrs: { sourceIp: 'fd00:10:0:1::5' },
    expect: 'allow',
  },
  {
    name: 'IPv6 block misses another IPv6 peer',
    policies: [allowFrom({ ipBlocks: ['fd00:10::/32'] })],
    layer: 'L4',
    attrs: { sourceIp: 'fd00:11::5' },
    expect: 'deny',
  },
  {
    name: 'IPv6 block never matches an IPv4 peer',
    policies: [allowFrom({ ipBlocks: ['::/0'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'IPv6 /128 single address, compressed forms',
    policies: [allowFrom({ ipBlocks: ['2001:db8:0:0:0:0:0:1'] })],
    layer: 'L4',
    attrs: { sourceIp: '2001:db8::1' },
    expect: 'allow',
  },
  {
    name: 'IPv6 /65 boundary inside',
    policies: [allowFrom({ ipBlocks: ['2001:db8:1:2::/65'] })],
    layer: 'L4',
    attrs: { sourceIp: '2001:db8:1:2:7fff::1' },
    expect: 'allow',
  },
  {
    name: 'IPv6 /65 boundary outside',
    policies: [allowFrom({ ipBlocks: ['2001:db8:1:2::/65'] })],
    layer: 'L4',
    attrs: { sourceIp: '2001:db8:1:2:8000::1' },
    expect: 'deny',
  },
  {
    name: 'remoteIpBlocks use the original client address',
    policies: [allowFrom({ remoteIpBlocks: ['203.0.113.0/24'] })],
    layer: 'L7',
    attrs: { remoteIp: '203.0.113.9' },
    expect: 'allow',
  },
  {
    name: 'remoteIpBlocks default to the peer address',
    policies: [allowFrom({ remoteIpBlocks: ['10.0.0.0/24'] })],
    layer: 'L7',
    expect: 'allow',
  },
  {
    name: 'remoteIpBlocks miss',
    policies: [allowFrom({ remoteIpBlocks: ['203.0.113.0/24'] })],
    layer: 'L7',
    attrs: { remoteIp: '198.51.100.1' },
    expect: 'deny',
  },
  {
    name: 'notRemoteIpBlocks excludes',
    policies: [allowFrom({ notRemoteIpBlocks: ['203.0.113.0/24'] })],
    layer: 'L7',
    attrs: { remoteIp: '203.0.113.9' },
    expect: 'deny',
  },

  // --- Source: requestPrincipals ---
  {
    name: 'requestPrincipals exact',
    policies: [allowFrom({ requestPrincipals: ['https://issuer.example/alice'] })],
    layer: 'L7',
    attrs: { auth: { principal: 'https://issuer.example/alice' } },
    expect: 'allow',
  },
  {
    name: 'requestPrincipals derived from iss/sub claims',
    policies: [allowFrom({ requestPrincipals: ['issuer.example/alice'] })],
    layer: 'L7',
    attrs: { auth: { claims: { iss: 'issuer.example', sub: 'alice' } } },
    expect: 'allow',
  },
  {
    name: 'requestPrincipals presence needs a JWT',
    policies: [allowFrom({ requestPrincipals: ['*'] })],
    layer: 'L7',
    expect: 'deny',
  },
  {
    name: 'requestPrincipals prefix by issuer',
    policies: [allowFrom({ requestPrincipals: ['issuer.example/*'] })],
    layer: 'L7',
    attrs: { auth: { principal: 'issuer.example/bob' } },
    expect: 'allow',
  },
  {
    name: 'DENY notRequestPrincipals ["*"] denies requests without JWT',
    policies: [denyFrom({ notRequestPrincipals: ['*'] })],
    layer: 'L7',
    expect: 'deny',
  },
  {
    name: 'DENY notRequestPrincipals ["*"] lets a JWT through',
    policies: [denyFrom({ notRequestPrincipals: ['*'] })],
    layer: 'L7',
    attrs: { auth: { principal: 'i/s' } },
    expect: 'allow',
  },

  // --- Operation ---
  {
    name: 'hosts exact',
    policies: [allowTo({ hosts: ['httpbin.foo.svc.cluster.local'] })],
    layer: 'L7',
    expect: 'allow',
  },
  {
    name: 'hosts are case-insensitive (request side)',
    policies: [allowTo({ hosts: ['httpbin.foo.svc.cluster.local'] })],
    layer: 'L7',
    attrs: { host: 'HTTPBIN.Foo.svc.cluster.local' },
    expect: 'allow',
  },
  {
    name: 'hosts are case-insensitive (policy side)',
    policies: [allowTo({ hosts: ['HTTPBIN.foo.svc.cluster.local'] })],
    layer: 'L7',
    expect: 'allow',
  },
  {
    name: 'hosts suffix wildcard',
    policies: [allowTo({ hosts: ['*.example.com'] })],
    layer: 'L7',
    attrs: { host: 'api.example.com' },
    expect: 'allow',
  },
  {
    name: 'hosts exact does not match host:port',
    policies: [allowTo({ hosts: ['api.example.com'] })],
    layer: 'L7',
    attrs: { host: 'api.example.com:8080' },
    expect: 'deny',
  },
  {
    name: 'hosts prefix covers host:port',
    policies: [allowTo({ hosts: ['api.example.com*'] })],
    layer: 'L7',
    attrs: { host: 'api.example.com:8080' },
    expect: 'allow',
  },
  {
    name: 'notHosts excludes (case-insensitive)',
    policies: [allowTo({ notHosts: ['admin.example.com'] })],
    layer: 'L7',
    attrs: { host: 'Admin.Example.com' },
    expect: 'deny',
  },
  { name: 'ports match', policies: [allowTo({ ports: ['8080'] })], layer: 'L4', expect: 'allow' },
  { name: 'ports mismatch', policies: [allowTo({ ports: ['80', '443'] })], layer: 'L4', expect: 'deny' },
  { name: 'notPorts excludes', policies: [allowTo({ notPorts: ['8080'] })], layer: 'L4', expect: 'deny' },
  { name: 'notPorts includes others', policies: [allowTo({ notPorts: ['9090'] })], layer: 'L4', expect: 'allow' },
  { name: 'methods match', policies: [allowTo({ methods: ['GET', 'HEAD'] })], layer: 'L7', expect: 'allow' },
  { name: 'methods mismatch', policies: [allowTo({ methods: ['POST'] })], layer: 'L7', expect: 'deny' },
  {
    name: 'methods are case-sensitive',
    policies: [allowTo({ methods: ['GET'] })],
    layer: 'L7',
    attrs: { method: 'get' },
    expect: 'deny',
  },
  { name: 'notMethods excludes', policies: [allowTo({ notMethods: ['GET'] })], layer: 'L7', expect: 'deny' },
  { name: 'notMethods includes others', policies: [allowTo({ notMethods: ['DELETE'] })], layer: 'L7', expect: 'allow' },
  {
    name: 'paths exact',
    policies: [allowTo({ paths: ['/headers'] })],
    layer: 'L7',
    attrs: { path: '/headers' },
    expect: 'allow',
  },
  {
    name: 'paths exact is not a prefix',
    policies: [allowTo({ paths: ['/headers'] })],
    layer: 'L7',
    attrs: { path: '/headers/x' },
    expect: 'deny',
  },
  {
    name: 'paths prefix',
    policies: [allowTo({ paths: ['/api/*'] })],
    layer: 'L7',
    attrs: { path: '/api/v1/users' },
    expect: 'allow',
  },
  {
    name: 'paths suffix',
    policies: [allowTo({ paths: ['*.html'] })],
    layer: 'L7',
    attrs: { path: '/site/index.html' },
    expect: 'allow',
  },
  {
    name: 'paths presence',
    policies: [allowTo({ paths: ['*'] })],
    layer: 'L7',
    attrs: { path: '/anything' },
    expect: 'allow',
  },
  {
    name: 'paths ignore the query string',
    policies: [allowTo({ paths: ['/headers'] })],
    layer: 'L7',
    attrs: { path: '/headers?x=/admin' },
    expect: 'allow',
  },
  {
    name: 'paths are case-sensitive',
    policies: [allowTo({ paths: ['/headers'] })],
    layer: 'L7',
    attrs: { path: '/Headers' },
    expect: 'deny',
  },
  {
    name: 'notPaths excludes',
    policies: [allowTo({ notPaths: ['/admin*'] })],
    layer: 'L7',
    attrs: { path: '/admin/x' },
    expect: 'deny',
  },
  {
    name: 'notPaths includes others',
    policies: [allowTo({ notPaths: ['/admin*'] })],
    layer: 'L7',
    attrs: { path: '/public' },
    expect: 'allow',
  },
  {
    name: 'path template {*} matches one segment',
    policies: [allowTo({ paths: ['/foo/{*}'] })],
    layer: 'L7',
    attrs: { path: '/foo/bar' },
    expect: 'allow',
  },
  {
    name: 'path template {*} does not match two segments',
    policies: [allowTo({ paths: ['/foo/{*}'] })],
    layer: 'L7',
    attrs: { path: '/foo/bar/baz' },
    expect: 'deny',
  },
  {
    name: 'path template {*} does not match an empty segment',
    policies: [allowTo({ paths: ['/foo/{*}'] })],
    layer: 'L7',
    attrs: { path: '/foo/' },
    expect: 'deny',
  },
  {
    name: 'path template {**} matches the rest',
    policies: [allowTo({ paths: ['/foo/{**}'] })],
    layer: 'L7',
    attrs: { path: '/foo/bar/baz/qux' },
    expect: 'allow',
  },
  {
    name: 'path template {*} then literal',
    policies: [allowTo({ paths: ['/users/{*}/profile'] })],
    layer: 'L7',
    attrs: { path: '/users/42/profile' },
    expect: 'allow',
  },
  {
    name: 'path template {**} with a literal suffix',
    policies: [allowTo({ paths: ['/files/{**}/meta'] })],
    layer: 'L7',
    attrs: { path: '/files/a/b/meta' },
    expect: 'allow',
  },
  {
    name: 'path template literal mismatch',
    policies: [allowTo({ paths: ['/users/{*}/profile'] })],
    layer: 'L7',
    attrs: { path: '/users/42/settings' },
    expect: 'deny',
  },

  // --- rule structure ---
  {
    name: 'from AND to: both must match',
    policies: [
      ap('allow', {
        rules: [{ from: [{ source: { namespaces: ['foo'] } }], to: [{ operation: { ports: ['9090'] } }] }],
      }),
    ],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'from AND to: both match',
    policies: [
      ap('allow', {
        rules: [{ from: [{ source: { namespaces: ['foo'] } }], to: [{ operation: { ports: ['8080'] } }] }],
      }),
    ],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'several from entries are ORed',
    policies: [
      ap('allow', {
        rules: [{ from: [{ source: { namespaces: ['bar'] } }, { source: { ipBlocks: ['10.0.0.0/8'] } }] }],
      }),
    ],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'fields inside one source are ANDed',
    policies: [allowFrom({ namespaces: ['foo'], ipBlocks: ['192.168.0.0/16'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'positive and not* of one field combine',
    policies: [allowFrom({ principals: ['cluster.local/ns/foo/*'], notPrincipals: ['cluster.local/ns/foo/sa/sleep'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'several to entries are ORed',
    policies: [
      ap('allow', { rules: [{ to: [{ operation: { methods: ['POST'] } }, { operation: { paths: ['/'] } }] }] }),
    ],
    layer: 'L7',
    expect: 'allow',
  },
  {
    name: 'when conditions are ANDed',
    policies: [
      allowWhen([
        { key: 'source.namespace', values: ['foo'] },
        { key: 'destination.port', values: ['9090'] },
      ]),
    ],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'several rules are ORed',
    policies: [
      ap('allow', {
        rules: [{ from: [{ source: { namespaces: ['bar'] } }] }, { from: [{ source: { namespaces: ['foo'] } }] }],
      }),
    ],
    layer: 'L4',
    expect: 'allow',
    rule: 1,
  },

  // --- conditions ---
  {
    name: 'request.headers exact',
    policies: [allowWhen([{ key: 'request.headers[x-token]', values: ['secret'] }])],
    layer: 'L7',
    attrs: { headers: { 'x-token': 'secret' } },
    expect: 'allow',
  },
  {
    name: 'request.headers name is case-insensitive (policy)',
    policies: [allowWhen([{ key: 'request.headers[X-Token]', values: ['secret'] }])],
    layer: 'L7',
    attrs: { headers: { 'x-token': 'secret' } },
    expect: 'allow',
  },
  {
    name: 'request.headers name is case-insensitive (request)',
    policies: [allowWhen([{ key: 'request.headers[x-token]', values: ['secret'] }])],
    layer: 'L7',
    attrs: { headers: { 'X-TOKEN': 'secret' } },
    expect: 'allow',
  },
  {
    name: 'request.headers value is case-sensitive',
    policies: [allowWhen([{ key: 'request.headers[x-token]', values: ['secret'] }])],
    layer: 'L7',
    attrs: { headers: { 'x-token': 'SECRET' } },
    expect: 'deny',
  },
  {
    name: 'request.headers prefix',
    policies: [allowWhen([{ key: 'request.headers[user-agent]', values: ['curl/*'] }])],
    layer: 'L7',
    attrs: { headers: { 'user-agent': 'curl/8.5' } },
    expect: 'allow',
  },
  {
    name: 'request.headers presence',
    policies: [allowWhen([{ key: 'request.headers[x-token]', values: ['*'] }])],
    layer: 'L7',
    attrs: { headers: { 'x-token': 'x' } },
    expect: 'allow',
  },
  {
    name: 'request.headers missing header fails values',
    policies: [allowWhen([{ key: 'request.headers[x-token]', values: ['*'] }])],
    layer: 'L7',
    expect: 'deny',
  },
  {
    name: 'request.headers missing header passes notValues',
    policies: [allowWhen([{ key: 'request.headers[x-token]', notValues: ['bad'] }])],
    layer: 'L7',
    expect: 'allow',
  },
  {
    name: 'request.headers repeated header is joined with commas',
    policies: [allowWhen([{ key: 'request.headers[x-role]', values: ['a,b'] }])],
    layer: 'L7',
    attrs: { headers: { 'x-role': ['a', 'b'] } },
    expect: 'allow',
  },
  {
    name: 'request.headers values and notValues together',
    policies: [allowWhen([{ key: 'request.headers[x-env]', values: ['prod*'], notValues: ['prod-eu'] }])],
    layer: 'L7',
    attrs: { headers: { 'x-env': 'prod-eu' } },
    expect: 'deny',
  },
  {
    name: 'source.ip condition',
    policies: [allowWhen([{ key: 'source.ip', values: ['10.0.0.0/16'] }])],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'source.ip notValues',
    policies: [allowWhen([{ key: 'source.ip', notValues: ['10.0.0.5'] }])],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'remote.ip condition',
    policies: [allowWhen([{ key: 'remote.ip', values: ['203.0.113.0/24'] }])],
    layer: 'L7',
    attrs: { remoteIp: '203.0.113.7' },
    expect: 'allow',
  },
  {
    name: 'source.namespace condition',
    policies: [allowWhen([{ key: 'source.namespace', values: ['foo'] }])],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'source.namespace notValues',
    policies: [allowWhen([{ key: 'source.namespace', notValues: ['foo'] }])],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'source.principal condition',
    policies: [allowWhen([{ key: 'source.principal', values: ['cluster.local/ns/foo/sa/sleep'] }])],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'source.serviceAccount condition',
    policies: [allowWhen([{ key: 'source.serviceAccount', values: ['foo/sleep'] }])],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'source.serviceAccount condition miss',
    policies: [allowWhen([{ key: 'source.serviceAccount', values: ['bar/sleep'] }])],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'request.auth.principal condition',
    policies: [allowWhen([{ key: 'request.auth.principal', values: ['iss/alice'] }])],
    layer: 'L7',
    attrs: { auth: { principal: 'iss/alice' } },
    expect: 'allow',
  },
  {
    name: 'request.auth.audiences matches any audience',
    policies: [allowWhen([{ key: 'request.auth.audiences', values: ['api'] }])],
    layer: 'L7',
    attrs: { auth: { claims: { aud: ['web', 'api'] } } },
    expect: 'allow',
  },
  {
    name: 'request.auth.audiences miss',
    policies: [allowWhen([{ key: 'request.auth.audiences', values: ['api'] }])],
    layer: 'L7',
    attrs: { auth: { claims: { aud: 'web' } } },
    expect: 'deny',
  },
  {
    name: 'request.auth.presenter condition',
    policies: [allowWhen([{ key: 'request.auth.presenter', values: ['frontend'] }])],
    layer: 'L7',
    attrs: { auth: { claims: { azp: 'frontend' } } },
    expect: 'allow',
  },
  {
    name: 'request.auth.claims string claim',
    policies: [allowWhen([{ key: 'request.auth.claims[iss]', values: ['https://accounts.example.com'] }])],
    layer: 'L7',
    attrs: { auth: { claims: { iss: 'https://accounts.example.com' } } },
    expect: 'allow',
  },
  {
    name: 'request.auth.claims list claim matches any element',
    policies: [allowWhen([{ key: 'request.auth.claims[groups]', values: ['admins'] }])],
    layer: 'L7',
    attrs: { auth: { claims: { groups: ['dev', 'admins'] } } },
    expect: 'allow',
  },
  {
    name: 'request.auth.claims nested claim',
    policies: [allowWhen([{ key: 'request.auth.claims[realm][role]', values: ['owner'] }])],
    layer: 'L7',
    attrs: { auth: { claims: { realm: { role: 'owner' } } } },
    expect: 'allow',
  },
  {
    name: 'request.auth.claims missing claim',
    policies: [allowWhen([{ key: 'request.auth.claims[groups]', values: ['admins'] }])],
    layer: 'L7',
    expect: 'deny',
  },
  {
    name: 'request.auth.claims notValues',
    policies: [allowWhen([{ key: 'request.auth.claims[groups]', notValues: ['banned'] }])],
    layer: 'L7',
    attrs: { auth: { claims: { groups: ['banned'] } } },
    expect: 'deny',
  },
  {
    name: 'destination.ip condition',
    policies: [allowWhen([{ key: 'destination.ip', values: ['10.0.1.0/24'] }])],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'destination.ip notValues',
    policies: [allowWhen([{ key: 'destination.ip', notValues: ['10.0.1.10'] }])],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'destination.port condition',
    policies: [allowWhen([{ key: 'destination.port', values: ['8080'] }])],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'destination.port notValues',
    policies: [allowWhen([{ key: 'destination.port', notValues: ['8080'] }])],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'connection.sni condition',
    policies: [allowWhen([{ key: 'connection.sni', values: ['*.example.com'] }])],
    layer: 'L7',
    attrs: { sni: 'www.example.com' },
    expect: 'allow',
  },
  {
    name: 'connection.sni absent',
    policies: [allowWhen([{ key: 'connection.sni', values: ['*'] }])],
    layer: 'L7',
    expect: 'deny',
  },

  // --- scoping ---
  {
    name: 'root-namespace policy without selector is mesh-wide',
    policies: [ap('deny-all', { action: 'DENY', rules: [{}] }, { ns: 'istio-system' })],
    layer: 'L4',
    expect: 'deny',
    by: 'istio-system/deny-all',
  },
  {
    name: 'root-namespace selector applies in every namespace',
    policies: [ap('allow-nothing', { selector: { matchLabels: { app: 'httpbin' } } }, { ns: 'istio-system' })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'root-namespace selector skips non-matching workloads',
    policies: [ap('allow-nothing', { selector: { matchLabels: { app: 'other' } } }, { ns: 'istio-system' })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'custom rootNamespace option',
    policies: [ap('deny-all', { action: 'DENY', rules: [{}] }, { ns: 'mesh-root' })],
    layer: 'L4',
    options: { rootNamespace: 'mesh-root' },
    expect: 'deny',
  },
  {
    name: 'istio-system is not special with another rootNamespace',
    policies: [ap('deny-all', { action: 'DENY', rules: [{}] }, { ns: 'istio-system' })],
    layer: 'L4',
    options: { rootNamespace: 'mesh-root' },
    expect: 'allow',
  },
  {
    name: 'selector requires every label',
    policies: [ap('allow-nothing', { selector: { matchLabels: { app: 'httpbin', version: 'v2' } } })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'selector with all labels matching applies',
    policies: [ap('allow-nothing', { selector: { matchLabels: { app: 'httpbin', version: 'v1' } } })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'selector does not reach other namespaces',
    policies: [ap('allow-nothing', { selector: { matchLabels: { app: 'httpbin' } } }, { ns: 'bar' })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'targetRefs policies are not enforced at the workload (ztunnel)',
    policies: [
      ap('deny-all', {
        action: 'DENY',
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
        rules: [{}],
      }),
    ],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'targetRefs Gateway is enforced by that waypoint',
    policies: [
      ap('deny-all', {
        action: 'DENY',
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
        rules: [{}],
      }),
    ],
    layer: 'L7',
    target: WAYPOINT,
    expect: 'deny',
  },
  {
    name: 'targetRefs Gateway of another waypoint does not apply',
    policies: [
      ap('deny-all', {
        action: 'DENY',
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'other' }],
        rules: [{}],
      }),
    ],
    layer: 'L7',
    target: WAYPOINT,
    expect: 'allow',
  },
  {
    name: 'targetRefs Service applies to requests for that service',
    policies: [
      ap('allow-get', {
        targetRefs: [{ kind: 'Service', group: '', name: 'httpbin' }],
        rules: [{ to: [{ operation: { methods: ['POST'] } }] }],
      }),
    ],
    layer: 'L7',
    target: WAYPOINT,
    expect: 'deny',
  },
  {
    name: 'targetRefs ServiceEntry',
    policies: [
      ap('deny-all', {
        action: 'DENY',
        targetRefs: [{ kind: 'ServiceEntry', group: 'networking.istio.io', name: 'ext' }],
        rules: [{}],
      }),
    ],
    layer: 'L7',
    target: {
      waypoint: {
        gateway: { namespace: 'foo', name: 'waypoint' },
        service: { namespace: 'foo', name: 'ext', kind: 'ServiceEntry' },
      },
    },
    expect: 'deny',
  },
  {
    name: 'targetRefs GatewayClass in the root namespace applies to every waypoint',
    policies: [
      ap(
        'deny-all',
        {
          action: 'DENY',
          targetRefs: [{ kind: 'GatewayClass', group: 'gateway.networking.k8s.io', name: 'istio-waypoint' }],
          rules: [{}],
        },
        { ns: 'istio-system' },
      ),
    ],
    layer: 'L7',
    target: WAYPOINT,
    expect: 'deny',
  },
  {
    name: 'selector policies are not enforced at a waypoint',
    policies: [ap('allow-nothing', { selector: { matchLabels: { app: 'httpbin' } } })],
    layer: 'L7',
    target: WAYPOINT,
    expect: 'allow',
  },
  {
    name: 'namespace-wide policies are not enforced at a waypoint',
    policies: [denyAll()],
    layer: 'L7',
    target: WAYPOINT,
    expect: 'allow',
  },
  {
    name: 'waypoint enforces targetRefs policies at L4 for TCP too',
    policies: [
      ap('deny-all', {
        action: 'DENY',
        targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'waypoint' }],
        rules: [{}],
      }),
    ],
    layer: 'L4',
    target: WAYPOINT,
    expect: 'deny',
  },

  // --- dry-run ---
  {
    name: 'dry-run DENY does not deny',
    policies: [ap('deny-all', { action: 'DENY', rules: [{}] }, { dryRun: true })],
    layer: 'L7',
    expect: 'allow',
    reason: 'no-allow-policies',
  },
  {
    name: 'dry-run ALLOW does not make ALLOW policies apply',
    policies: [ap('allow-nothing', {}, { dryRun: true })],
    layer: 'L7',
    expect: 'allow',
    reason: 'no-allow-policies',
  },
  {
    name: 'dry-run DENY at L4 does not deny',
    policies: [ap('deny-all', { action: 'DENY', rules: [{}] }, { dryRun: true })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'enforced DENY still denies beside a dry-run ALLOW',
    policies: [denyAll(), ap('allow-all', { rules: [{}] }, { dryRun: true })],
    layer: 'L7',
    expect: 'deny',
  },

  // --- L4 degradation (ztunnel) ---
  {
    name: 'L4: ALLOW rule with methods is dropped, so it denies',
    policies: [allowTo({ methods: ['GET'] })],
    layer: 'L4',
    expect: 'deny',
    reason: 'no-allow-match',
  },
  {
    name: 'L7: the same ALLOW rule allows GET',
    policies: [allowTo({ methods: ['GET'] })],
    layer: 'L7',
    expect: 'allow',
  },
  {
    name: 'L4: ALLOW with an L4 rule beside an HTTP rule uses the L4 rule',
    policies: [
      ap('allow', {
        rules: [{ to: [{ operation: { paths: ['/x'] } }] }, { from: [{ source: { namespaces: ['foo'] } }] }],
      }),
    ],
    layer: 'L4',
    expect: 'allow',
    rule: 1,
  },
  {
    name: 'L4: ALLOW rule mixing ports and paths is dropped whole',
    policies: [allowTo({ ports: ['8080'], paths: ['/x'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'L4: ALLOW rule with requestPrincipals is dropped',
    policies: [allowFrom({ namespaces: ['foo'], requestPrincipals: ['*'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'L4: ALLOW rule with remoteIpBlocks is dropped',
    policies: [allowFrom({ remoteIpBlocks: ['10.0.0.0/8'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'L4: ALLOW rule with a request.headers condition is dropped',
    policies: [allowWhen([{ key: 'request.headers[x]', values: ['y'] }])],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'L4: ALLOW rule with connection.sni is dropped',
    policies: [allowWhen([{ key: 'connection.sni', values: ['a'] }])],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'L4: DENY with only paths denies every connection',
    policies: [denyTo({ paths: ['/admin'] })],
    layer: 'L4',
    expect: 'deny',
    reason: 'deny-policy',
  },
  {
    name: 'L4: DENY with ports and methods keeps the port (other port allowed)',
    policies: [denyTo({ ports: ['9090'], methods: ['POST'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'L4: DENY with ports and methods keeps the port (that port denied)',
    policies: [denyTo({ ports: ['8080'], methods: ['POST'] })],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'L4: DENY source keeps principals, drops requestPrincipals',
    policies: [denyFrom({ principals: ['cluster.local/ns/bar/*'], requestPrincipals: ['*'] })],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'L4: DENY from list with an HTTP-only source denies all',
    policies: [
      ap('deny', {
        action: 'DENY',
        rules: [{ from: [{ source: { namespaces: ['bar'] } }, { source: { requestPrincipals: ['x/y'] } }] }],
      }),
    ],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'L4: DENY with a request.auth condition denies all',
    policies: [denyWhen([{ key: 'request.auth.claims[group]', values: ['x'] }])],
    layer: 'L4',
    expect: 'deny',
  },
  {
    name: 'L4: DENY keeps its L4 condition beside an HTTP one',
    policies: [
      denyWhen([
        { key: 'request.headers[x]', values: ['y'] },
        { key: 'destination.port', values: ['9090'] },
      ]),
    ],
    layer: 'L4',
    expect: 'allow',
  },
  {
    name: 'L4: AUDIT is not enforced',
    policies: [ap('audit', { action: 'AUDIT', rules: [{}] }), ap('allow-nothing', {})],
    layer: 'L4',
    expect: 'deny',
    reason: 'no-allow-match',
  },
  {
    name: 'L7 over a waypoint: DENY with only paths denies only that path',
    policies: [denyTo({ paths: ['/admin'] })],
    layer: 'L7',
    attrs: { path: '/public' },
    expect: 'allow',
  },

  // --- path normalization and attacks (DENY /admin*, default BASE) ---
  ...(
    [
      ['/admin', 'deny'],
      ['/admin/../admin', 'deny'],
      ['/public/../admin', 'deny'],
      ['/public/%2e%2e/admin', 'deny'],
      ['/public/%2E%2E/admin', 'deny'],
      ['/./admin', 'deny'],
      ['/%61dmin', 'deny'],
      ['/public\\..\\admin', 'deny'],
      ['\\admin', 'deny'],
      ['/admin?debug=1', 'deny'],
      ['/admin#x', 'deny'],
      ['//admin', 'allow'],
      ['/public/%252e%252e/admin', 'allow'],
      ['/public%2F..%2Fadmin', 'allow'],
      ['/Admin', 'allow'],
    ] as const
  ).map(
    ([path, expect]): Case => ({
      name: `BASE normalization: ${JSON.stringify(path)} ${expect === 'deny' ? 'is caught' : 'stays distinct'} by DENY /admin*`,
      policies: [denyTo({ paths: ['/admin*'] })],
      layer: 'L7',
      attrs: { path },
      expect,
    }),
  ),
  {
    name: '%00 in the path is rejected',
    policies: [],
    layer: 'L7',
    attrs: { path: '/admin%00.html' },
    expect: 'deny',
    reason: 'invalid-request',
  },
  {
    name: 'a raw NUL in the path is rejected',
    policies: [],
    layer: 'L7',
    attrs: { path: '/a\u0000' },
    expect: 'deny',
    reason: 'invalid-request',
  },
  {
    name: 'MERGE_SLASHES: //admin is caught',
    policies: [denyTo({ paths: ['/admin*'] })],
    layer: 'L7',
    attrs: { path: '//admin' },
    options: { pathNormalization: 'MERGE_SLASHES' },
    expect: 'deny',
  },
  {
    name: 'MERGE_SLASHES: /x//admin is not /admin',
    policies: [denyTo({ paths: ['/admin*'] })],
    layer: 'L7',
    attrs: { path: '/x//admin' },
    options: { pathNormalization: 'MERGE_SLASHES' },
    expect: 'allow',
  },
  {
    name: 'MERGE_SLASHES leaves %2F encoded',
    policies: [denyTo({ paths: ['/admin*'] })],
    layer: 'L7',
    attrs: { path: '/public%2F..%2Fadmin' },
    options: { pathNormalization: 'MERGE_SLASHES' },
    expect: 'allow',
  },
  {
    name: 'DECODE_AND_MERGE_SLASHES: %2F..%2F is caught',
    policies: [denyTo({ paths: ['/admin*'] })],
    layer: 'L7',
    attrs: { path: '/public%2F..%2Fadmin' },
    options: { pathNormalization: 'DECODE_AND_MERGE_SLASHES' },
    expect: 'deny',
  },
  {
    name: 'DECODE_AND_MERGE_SLASHES: %5C..%5C is caught',
    policies: [denyTo({ paths: ['/admin*'] })],
    layer: 'L7',
    attrs: { path: '/public%5c..%5cadmin' },
    options: { pathNormalization: 'DECODE_AND_MERGE_SLASHES' },
    expect: 'deny',
  },
  {
    name: 'DECODE_AND_MERGE_SLASHES: /%2F%2Fadmin is caught',
    policies: [denyTo({ paths: ['/admin*'] })],
    layer: 'L7',
    attrs: { path: '/%2F%2Fadmin' },
    options: { pathNormalization: 'DECODE_AND_MERGE_SLASHES' },
    expect: 'deny',
  },
  {
    name: 'a path not starting with / is rejected',
    policies: [],
    layer: 'L7',
    attrs: { path: 'admin' },
    expect: 'deny',
    reason: 'invalid-request',
  },
  {
    name: 'ALLOW /public* cannot be escaped with ..',
    policies: [allowTo({ paths: ['/public/*'] })],
    layer: 'L7',
    attrs: { path: '/public/../admin' },
    expect: 'deny',
  },
  {
    name: 'ALLOW exact path matches after decoding unreserved',
    policies: [allowTo({ paths: ['/api/v1'] })],
    layer: 'L7',
    attrs: { path: '/api/%76%31' },
    expect: 'allow',
  },
  {
    name: 'path template applies to the normalized path',
    policies: [denyTo({ paths: ['/admin/{**}'] })],
    layer: 'L7',
    attrs: { path: '/x/../admin/./users' },
    expect: 'deny',
  },

  // --- malformed traffic fails closed ---
  {
    name: 'malformed identity is an invalid request',
    policies: [allowFrom({ namespaces: ['foo'] })],
    layer: 'L4',
    attrs: { sourceIdentity: 'spiffe://td/ns/only' },
    expect: 'deny',
    reason: 'invalid-request',
  },
  {
    name: 'malformed source IP is an invalid request when a policy needs it',
    policies: [denyFrom({ ipBlocks: ['1.2.3.4'] })],
    layer: 'L4',
    attrs: { sourceIp: '10.0.0.999' },
    expect: 'deny',
    reason: 'invalid-request',
  },
  {
    name: 'missing source IP is an invalid request when a policy needs it',
    policies: [denyFrom({ notIpBlocks: ['1.2.3.4'] })],
    layer: 'L4',
    attrs: { sourceIp: undefined },
    expect: 'deny',
    reason: 'invalid-request',
  },
  {
    name: 'missing destination port is an invalid request when a policy needs it',
    policies: [allowTo({ ports: ['80'] })],
    layer: 'L4',
    attrs: { destinationPort: undefined },
    expect: 'deny',
    reason: 'invalid-request',
  },
  {
    name: 'addresses are not needed when no policy uses them',
    policies: [allowFrom({ namespaces: ['foo'] })],
    layer: 'L4',
    attrs: { sourceIp: undefined, destinationIp: undefined },
    expect: 'allow',
  },
  {
    name: 'a principal-form identity (no spiffe://) is accepted',
    policies: [allowFrom({ principals: ['cluster.local/ns/foo/sa/sleep'] })],
    layer: 'L4',
    attrs: { sourceIdentity: 'cluster.local/ns/foo/sa/sleep' },
    expect: 'allow',
  },
];

describe('AuthorizationPolicy conformance', () => {
  it('has at least 150 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(150);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const engine = compilePolicies(c.policies, c.options);
    const target = c.target ?? HTTPBIN;
    const d =
      c.layer === 'L4'
        ? engine.checkConnection({ ...CONN, ...(c.attrs as object) }, target)
        : engine.checkRequest(req(c.attrs), target);
    expect({ decision: d.decision, layer: d.layer }).toEqual({ decision: c.expect, layer: c.layer });
    expect(d.allowed).toBe(c.expect === 'allow');
    if (c.reason) expect(d.reason).toBe(c.reason);
    if (c.by) expect(d.policy && `${d.policy.namespace}/${d.policy.name}`).toBe(c.by);
    if (c.rule !== undefined) expect(d.rule).toBe(c.rule);
    expect(typeof d.message).toBe('string');
  });
});
