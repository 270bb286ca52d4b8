// The operator dashboard served at /dashboard/. It uses the public API only: REST to sign in,
// renew and sign out, GraphQL over POST /graphql for reads and changes, and one
// `callRecordingEvents` subscription over /graphql/ws (graphql-transport-ws) that keeps the
// page current. It is meant to be read by people writing their own dashboards:
//
// - State is fetched after the subscription says it is live, and events that arrive while
//   that fetch is in flight are applied after it, in order, so nothing is missed.
// - Every event from the change log carries a cursor; a socket that drops is reopened with
//   `after: <last cursor>` and the server replays what was missed. Without a cursor, or when
//   the server says the events are lost, the page fetches its state again.
// - Server errors are shown next to the field they name (`extensions.field`,
//   `details.field`); the page never second-guesses the server's rules.
// - Tokens live in this module's memory only; the access token is renewed with the refresh
//   token before it expires, and the subscription moves to the new token.

const LOGIN = '/api/v1/login/';
const RENEW = '/api/v1/auth/access_token/';
const LOGOUT = '/api/v1/logout/';
const GRAPHQL = '/graphql';
const EVENTS_SOCKET = '/graphql/ws';
/** How many audit entries "Recent changes" lists, from how many of the newest: sign-ins and
 * token renewals are commits too, but not changes an operator looks for. */
const RECENT = 20;
const RECENT_READ = 100;
/** Reconnection back-off of the event socket, in milliseconds. */
const RECONNECT_FIRST = 250;
const RECONNECT_MAX = 10000;

const LEVELS = {
  SYSTEM_ADMIN: 'System Admin',
  TENANT_ADMIN: 'Tenant Admin',
  GROUP_ADMIN: 'Group Admin',
  END_USER: 'End User',
};
const LABELS = {
  DUAL: 'Dual', SINGLE: 'Single', UDP: 'UDP', TCP: 'TCP', UNSPECIFIED: 'Unspecified',
  V1_0: '1.0', V2_0: '2.0', V3_0: '3.0',
};

const ME = `query DashboardMe { me { username level tenantId groupId } }`;

// Usage and reachability are for System Admins; other levels ask for less.
const SYSTEM_STATE = `query DashboardState {
  callRecordingPlatforms {
    systemDefault
    platforms {
      name netAddress port mediaStream transportProtocol description schemaVersion
      supportVideoRecording isDefault
      usage { tenantId groupId }
      reachability { state lastError }
    }
  }
  callRecordingProperties {
    continueCallAfterRecordingFailure refreshPeriodSeconds maxConsecutiveFailures
    maxResponseWaitTimeMilliseconds continueCallAfterVideoRecordingFailure
  }
  tenants { tenantId groups { tenantId groupId callRecordingPlatform } }
}`;

const TENANT_STATE = `query DashboardTenantState($tenantId: String!) {
  callRecordingPlatforms {
    systemDefault
    platforms {
      name netAddress port mediaStream transportProtocol description schemaVersion
      supportVideoRecording isDefault
    }
  }
  tenant(tenantId: $tenantId) { tenantId groups { tenantId groupId callRecordingPlatform } }
}`;

const GROUP_STATE = `query DashboardGroupState($tenantId: String!, $groupId: String!) {
  callRecordingPlatforms {
    systemDefault
    platforms {
      name netAddress port mediaStream transportProtocol description schemaVersion
      supportVideoRecording isDefault
    }
  }
  group(tenantId: $tenantId, groupId: $groupId) { tenantId groupId callRecordingPlatform }
}`;

// Reachability is live only (never replayed), so a resumed subscription asks for it again.
const REACHABILITY = `query DashboardReachability {
  callRecordingPlatforms { platforms { name reachability { state lastError } } }
}`;

const RECENT_CHANGES = `query DashboardRecentChanges($last: Int!) {
  auditLog(last: $last) {
    edges { cursor node { sequence at actor operation changes { kind key before after } } }
  }
}`;

const EVENTS = `subscription DashboardEvents($after: String) {
  callRecordingEvents(after: $after) {
    __typename
    ... on CallRecordingSubscriptionStarted { live }
    ... on CallRecordingPlatformAdded {
      cursor at actor
      platform {
        name netAddress port mediaStream transportProtocol description schemaVersion
        supportVideoRecording isDefault
        usage { tenantId groupId }
        reachability { state lastError }
      }
    }
    ... on CallRecordingPlatformModified {
      cursor at actor
      platform {
        name netAddress port mediaStream transportProtocol description schemaVersion
        supportVideoRecording isDefault
      }
    }
    ... on CallRecordingPlatformDeleted { cursor at actor name }
    ... on CallRecordingDefaultChanged { cursor at actor previousDefault systemDefault }
    ... on CallRecordingPropertiesModified {
      cursor at actor
      properties {
        continueCallAfterRecordingFailure refreshPeriodSeconds maxConsecutiveFailures
        maxResponseWaitTimeMilliseconds continueCallAfterVideoRecordingFailure
      }
    }
    ... on GroupCallRecordingPlatformAssigned {
      cursor at actor
      group { tenantId groupId }
      previousPlatform
      callRecordingPlatform
    }
    ... on CallRecordingPlatformReachabilityChanged { name state previous at }
  }
}`;

const ADD_PLATFORM = `mutation DashboardAddPlatform($input: AddCallRecordingPlatformInput!) {
  addCallRecordingPlatform(input: $input) {
    name netAddress port mediaStream transportProtocol description schemaVersion
    supportVideoRecording isDefault
  }
}`;

const MODIFY_PLATFORM = `mutation DashboardModifyPlatform($name: String!, $input: ModifyCallRecordingPlatformInput!) {
  modifyCallRecordingPlatform(name: $name, input: $input) {
    name netAddress port mediaStream transportProtocol description schemaVersion
    supportVideoRecording isDefault
  }
}`;

const DELETE_PLATFORM = `mutation DashboardDeletePlatform($name: String!) {
  deleteCallRecordingPlatform(name: $name) { name }
}`;

const MODIFY_PROPERTIES = `mutation DashboardModifyProperties($input: ModifyCallRecordingPropertiesInput!) {
  modifyCallRecordingProperties(input: $input) {
    continueCallAfterRecordingFailure refreshPeriodSeconds maxConsecutiveFailures
    maxResponseWaitTimeMilliseconds continueCallAfterVideoRecordingFailure
  }
}`;

const SET_GROUP_PLATFORM = `mutation DashboardSetGroupPlatform($tenantId: String!, $groupId: String!, $name: String) {
  setGroupCallRecordingPlatform(tenantId: $tenantId, groupId: $groupId, name: $name) {
    tenantId groupId callRecordingPlatform
  }
}`;

const PROPERTY_NAMES = [
  'continueCallAfterRecordingFailure', 'refreshPeriodSeconds', 'maxConsecutiveFailures',
  'maxResponseWaitTimeMilliseconds', 'continueCallAfterVideoRecordingFailure',
];

const $ = (id) => document.getElementById(id);

// ---- session -------------------------------------------------------------------------------

/** `{access, refresh, me}` while signed in; tokens are never written to storage. */
let session = null;
let renewTimer = null;
let renewing = null;

/** The lifetime of a JWT in milliseconds (from its own `iat` and `exp`, so clock skew
 * between browser and server does not matter), or null when it cannot be read. */
function lifetime(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(payload));
    return (claims.exp - claims.iat) * 1000;
  } catch {
    return null;
  }
}

function scheduleRenewal() {
  clearTimeout(renewTimer);
  const ms = lifetime(session.access);
  if (!ms) return;
  // Renew at 80% of the lifetime, leaving time for a slow answer and a retry.
  renewTimer = setTimeout(async () => {
    if (await renew()) restartEvents();
  }, Math.max(1000, ms * 0.8));
}

/** Trades the refresh token for a new pair; one renewal at a time. */
function renew() {
  if (!session) return Promise.resolve(false);
  renewing ??= (async () => {
    const current = session;
    try {
      const response = await fetch(RENEW, {
        headers: { authorization: `Bearer ${current.refresh}` },
      });
      if (!response.ok || session !== current) return false;
      const body = await response.json();
      current.access = body.access_token;
      current.refresh = body.refresh_token;
      scheduleRenewal();
      return true;
    } catch {
      return false;
    } finally {
      renewing = null;
    }
  })();
  return renewing;
}

/** The message of a REST error body (`{"errors": [{"message", "details"}]}`). */
async function restError(response) {
  try {
    const body = await response.json();
    return body.errors[0].message;
  } catch {
    return `The server answered ${response.status}.`;
  }
}

async function signIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const errorSlot = $('sign-in-error');
  errorSlot.textContent = '';
  const username = form.username.value;
  const password = form.password.value;
  form.querySelector('button').disabled = true;
  try {
    const response = await fetch(LOGIN, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (!response.ok) {
      errorSlot.textContent = await restError(response);
      form.password.focus();
      return;
    }
    const body = await response.json();
    session = { access: body.access_token, refresh: body.refresh_token, me: null };
    form.reset();
    scheduleRenewal();
    await start();
  } catch (error) {
    errorSlot.textContent = `The server could not be reached (${error.message}).`;
  } finally {
    form.querySelector('button').disabled = false;
  }
}

async function signOut() {
  const ending = session;
  endSession('');
  if (!ending) return;
  try {
    await fetch(LOGOUT, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ending.access}` },
      body: JSON.stringify({ refresh_token: ending.refresh }),
    });
  } catch {
    // The tokens are forgotten either way; the session ends when they expire.
  }
}

/** Forgets the session and everything shown; `message` says why, on the sign-in form. */
function endSession(message) {
  session = null;
  clearTimeout(renewTimer);
  stopEvents();
  state = emptyState();
  $('dashboard').hidden = true;
  $('session').hidden = true;
  $('sign-in-section').hidden = false;
  $('sign-in-error').textContent = message;
  $('live').textContent = '';
  $('platforms').tHead.replaceChildren();
  $('platforms').tBodies[0].replaceChildren();
  $('groups').replaceChildren();
  $('changes').replaceChildren();
  notice('');
  $('username').focus();
}

// ---- GraphQL over HTTP ---------------------------------------------------------------------

async function post(query, variables) {
  const response = await fetch(GRAPHQL, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${session.access}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  try {
    return await response.json();
  } catch {
    return { errors: [{ message: `The server answered ${response.status}.` }] };
  }
}

const unauthenticated = (answer) =>
  (answer.errors ?? []).some((e) => e.extensions?.code === 'UNAUTHENTICATED');

/** Runs an operation; an expired access token is renewed once. Answers `{data, errors}`. */
async function graphql(query, variables = {}) {
  if (!session) return { errors: [{ message: 'Not signed in.' }] };
  try {
    let answer = await post(query, variables);
    if (unauthenticated(answer) && (await renew())) answer = await post(query, variables);
    if (unauthenticated(answer)) endSession(answer.errors[0].message);
    return answer;
  } catch (error) {
    return { errors: [{ message: `The server could not be reached (${error.message}).` }] };
  }
}

// ---- state ---------------------------------------------------------------------------------

function emptyState() {
  return {
    loaded: false,
    systemDefault: null,
    /** name -> platform, with `usage` (array of `{tenantId, groupId}`) when known. */
    platforms: new Map(),
    properties: null,
    /** tenantId -> Map(groupId -> platform name or null) */
    tenants: new Map(),
    changes: [],
  };
}

let state = emptyState();

const isSystemAdmin = () => session?.me?.level === 'SYSTEM_ADMIN';

function setPlatforms(list) {
  state.systemDefault = list.systemDefault ?? null;
  state.platforms = new Map(list.platforms.map((p) => [p.name, p]));
}

function setGroups(groups) {
  for (const g of groups) {
    if (!state.tenants.has(g.tenantId)) state.tenants.set(g.tenantId, new Map());
    state.tenants.get(g.tenantId).set(g.groupId, g.callRecordingPlatform ?? null);
  }
}

/** Fetches everything the caller's level may see. */
async function loadState() {
  const me = session.me;
  // The audit trail first: its newest cursor is then no later than the state read next, so
  // resuming the subscription from it replays, at worst, changes the state already shows.
  if (me.level === 'SYSTEM_ADMIN') await loadRecentChanges();
  let answer;
  if (me.level === 'SYSTEM_ADMIN') {
    answer = await graphql(SYSTEM_STATE);
  } else if (me.level === 'TENANT_ADMIN') {
    answer = await graphql(TENANT_STATE, { tenantId: me.tenantId });
  } else {
    answer = await graphql(GROUP_STATE, { tenantId: me.tenantId, groupId: me.groupId });
  }
  if (!session) return false;
  const data = answer.data;
  if (!data?.callRecordingPlatforms) {
    notice(errorText(answer.errors));
    return false;
  }
  state.tenants = new Map();
  setPlatforms(data.callRecordingPlatforms);
  if (data.callRecordingProperties) state.properties = data.callRecordingProperties;
  for (const tenant of data.tenants ?? []) {
    state.tenants.set(tenant.tenantId, new Map());
    setGroups(tenant.groups);
  }
  if (data.tenant) {
    state.tenants.set(data.tenant.tenantId, new Map());
    setGroups(data.tenant.groups);
  }
  if (data.group) setGroups([data.group]);
  state.loaded = true;
  notice('');
  render();
  return true;
}

let recentLoading = null;
let recentAgain = false;

/** Fetches the newest audit entries; calls while one is in flight fold into one more. */
async function loadRecentChanges() {
  if (recentLoading) {
    recentAgain = true;
    return recentLoading;
  }
  recentLoading = (async () => {
    do {
      recentAgain = false;
      const answer = await graphql(RECENT_CHANGES, { last: RECENT_READ });
      if (!session) return;
      const edges = answer.data?.auditLog?.edges;
      if (edges) {
        // An entry's cursor is also a place to resume the event stream from (see loadState).
        if (!events.cursor && edges.length > 0) events.cursor = edges[edges.length - 1].cursor;
        // Edges come oldest first; the list shows the newest first.
        state.changes = edges
          .map((e) => e.node)
          .filter((entry) => entry.changes.some(shown))
          .reverse()
          .slice(0, RECENT);
        $('changes-error').textContent = '';
      } else {
        $('changes-error').textContent = errorText(answer.errors);
      }
      renderChanges();
    } while (recentAgain);
  })();
  try {
    await recentLoading;
  } finally {
    recentLoading = null;
  }
}

function upsertPlatform(platform) {
  const old = state.platforms.get(platform.name);
  const merged = { ...old, ...platform };
  if (!merged.usage) merged.usage = [];
  state.platforms.set(platform.name, merged);
  if (platform.isDefault) markDefault(platform.name);
}

function markDefault(name) {
  state.systemDefault = name;
  for (const p of state.platforms.values()) p.isDefault = p.name === name;
}

function assignGroup(tenantId, groupId, platform) {
  if (!state.tenants.has(tenantId)) state.tenants.set(tenantId, new Map());
  const groups = state.tenants.get(tenantId);
  const previous = groups.get(groupId) ?? null;
  groups.set(groupId, platform);
  const same = (g) => g.tenantId === tenantId && g.groupId === groupId;
  const before = previous && state.platforms.get(previous);
  if (before?.usage) before.usage = before.usage.filter((g) => !same(g));
  const after = platform && state.platforms.get(platform);
  if (after?.usage && !after.usage.some(same)) after.usage.push({ tenantId, groupId });
}

/** Applies one change. Every event says how things are now, not by how much they moved,
 * so applying one twice, or after a fetch that already saw it, is harmless. */
function apply(event) {
  switch (event.__typename) {
    case 'CallRecordingPlatformAdded':
    case 'CallRecordingPlatformModified':
      upsertPlatform(event.platform);
      break;
    case 'CallRecordingPlatformDeleted':
      state.platforms.delete(event.name);
      if (state.systemDefault === event.name) state.systemDefault = null;
      break;
    case 'CallRecordingDefaultChanged':
      markDefault(event.systemDefault);
      break;
    case 'CallRecordingPropertiesModified':
      state.properties = event.properties;
      break;
    case 'GroupCallRecordingPlatformAssigned':
      assignGroup(event.group.tenantId, event.group.groupId, event.callRecordingPlatform);
      break;
    case 'CallRecordingPlatformReachabilityChanged': {
      const platform = state.platforms.get(event.name);
      if (platform) platform.reachability = { ...platform.reachability, state: event.state };
      break;
    }
    default:
      return;
  }
  render();
}

// ---- the event subscription ----------------------------------------------------------------

const events = {
  socket: null,
  /** The cursor of the last change-log event applied. */
  cursor: null,
  /** Events received while the state is being fetched, applied after it. */
  pending: null,
  retryTimer: null,
  retryDelay: RECONNECT_FIRST,
  live: false,
};

function setLive(text, live) {
  events.live = live;
  $('live').textContent = text;
  $('live').classList.toggle('on', live);
  for (const el of document.querySelectorAll('[data-needs="not-live"]')) {
    el.hidden = live;
  }
}

function eventsUrl() {
  const url = new URL(EVENTS_SOCKET, window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/** Opens the socket and subscribes, from the last cursor when there is one. */
function startEvents() {
  clearTimeout(events.retryTimer);
  const after = events.cursor;
  const ws = new WebSocket(eventsUrl(), 'graphql-transport-ws');
  events.socket = ws;
  const send = (message) => ws.send(JSON.stringify(message));
  ws.onopen = () => {
    send({ type: 'connection_init', payload: { Authorization: `Bearer ${session.access}` } });
  };
  ws.onmessage = async (message) => {
    if (events.socket !== ws) return;
    let msg;
    try {
      msg = JSON.parse(message.data);
    } catch {
      return;
    }
    switch (msg.type) {
      case 'connection_ack':
        send({
          id: 'events',
          type: 'subscribe',
          payload: { query: EVENTS, variables: after ? { after } : {} },
        });
        break;
      case 'ping':
        send({ type: 'pong' });
        break;
      case 'next':
        if (msg.payload.errors) {
          streamFailed(ws, msg.payload.errors, after);
        } else {
          await received(msg.payload.data.callRecordingEvents, after);
        }
        break;
      case 'error':
        streamFailed(ws, msg.payload, after);
        break;
      case 'complete':
        closeSocket(ws);
        retry();
        break;
      default:
        break;
    }
  };
  ws.onclose = (close) => {
    if (events.socket !== ws) return;
    events.socket = null;
    if (close.code === 4403) {
      // connection_init refused: the access token is no longer good.
      renew().then((renewed) => {
        if (renewed) retry();
        else endSession('Your session has ended; sign in again.');
      });
    } else {
      retry();
    }
  };
}

async function received(event, resumedFrom) {
  if (event.__typename === 'CallRecordingSubscriptionStarted') {
    events.retryDelay = RECONNECT_FIRST;
    setLive('Live', true);
    if (resumedFrom && state.loaded) {
      // The server replays what happened after the cursor; only reachability, which is
      // never replayed, is asked for again.
      await refreshReachability();
    } else {
      await refetch();
    }
    return;
  }
  if (event.cursor) events.cursor = event.cursor;
  if (events.pending) {
    events.pending.push(event);
    return;
  }
  apply(event);
  if (event.cursor && isSystemAdmin()) loadRecentChanges();
}

/** Fetches the state; events arriving meanwhile are applied after it, in order. */
async function refetch() {
  events.pending = [];
  try {
    await loadState();
  } finally {
    const pending = events.pending;
    events.pending = null;
    for (const event of pending) apply(event);
    if (pending.some((e) => e.cursor)) loadRecentChanges();
  }
}

async function refreshReachability() {
  const answer = await graphql(REACHABILITY);
  for (const p of answer.data?.callRecordingPlatforms?.platforms ?? []) {
    const platform = state.platforms.get(p.name);
    if (platform) platform.reachability = p.reachability;
  }
  render();
}

function streamFailed(ws, errors, resumedFrom) {
  const codes = (errors ?? []).map((e) => e.extensions?.code);
  closeSocket(ws);
  if (codes.includes('UNAUTHENTICATED')) {
    renew().then((renewed) => {
      if (renewed) retry();
      else endSession(errorText(errors));
    });
  } else if (codes.includes('EVENTS_LOST') || resumedFrom) {
    // The cursor is older than the log keeps, or names no place in it any more (a data
    // folder restored from a backup): start over from a fetch.
    events.cursor = null;
    retry();
  } else {
    // Not something a retry mends: show it, and show the state without live updates.
    setLive(`Not live: ${errorText(errors)}`, false);
    if (!state.loaded) loadState();
  }
}

function closeSocket(ws) {
  if (events.socket === ws) events.socket = null;
  ws.onclose = null;
  if (ws.readyState <= WebSocket.OPEN) ws.close(1000);
}

/** Reopens the socket after a growing pause, while signed in. */
function retry() {
  if (!session) return;
  setLive('Reconnecting…', false);
  clearTimeout(events.retryTimer);
  events.retryTimer = setTimeout(startEvents, events.retryDelay);
  events.retryDelay = Math.min(events.retryDelay * 2, RECONNECT_MAX);
}

function stopEvents() {
  clearTimeout(events.retryTimer);
  if (events.socket) closeSocket(events.socket);
  events.cursor = null;
  events.pending = null;
  events.retryDelay = RECONNECT_FIRST;
}

/** After a renewal: the stream of the old token would end when it expires. */
function restartEvents() {
  if (!isSystemAdmin() || !events.socket) return;
  closeSocket(events.socket);
  startEvents();
}

// ---- rendering -----------------------------------------------------------------------------

/** An element with attributes and children (strings become text, never markup). */
function h(tag, attributes = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Text for screen readers only, e.g. which row a button acts on. */
const hidden = (text) => h('span', { class: 'visually-hidden' }, text);

function notice(text) {
  $('notice').textContent = text;
}

function errorText(errors) {
  return (errors ?? []).map((e) => e.message).join(' ') || 'Something went wrong.';
}

/** Keeps keyboard focus on the same control across a re-render. */
function keepingFocus(draw) {
  const key = document.activeElement?.dataset?.focusKey;
  draw();
  if (key) document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
}

function render() {
  if (!state.loaded) return;
  keepingFocus(() => {
    renderPlatforms();
    renderProperties();
    renderGroups();
  });
}

function renderPlatforms() {
  const admin = isSystemAdmin();
  const list = [...state.platforms.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const probing = admin && list.some((p) => p.reachability && p.reachability.state !== 'NOT_PROBED');
  const columns = ['Name', 'Address', 'Port', 'Transport', 'Media', 'Schema', 'Video',
    'Description', 'Default'];
  if (admin) columns.push('Groups');
  if (probing) columns.push('Reachability');
  if (admin) columns.push('Actions');
  const table = $('platforms');
  table.tHead.replaceChildren(h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c))));
  table.tBodies[0].replaceChildren(...list.map((p) => {
    const cells = [
      h('th', { scope: 'row' }, p.name),
      h('td', {}, p.netAddress),
      h('td', { class: 'number' }, p.port ?? '—'),
      h('td', {}, LABELS[p.transportProtocol]),
      h('td', {}, LABELS[p.mediaStream]),
      h('td', {}, LABELS[p.schemaVersion]),
      h('td', {}, p.supportVideoRecording ? 'yes' : 'no'),
      h('td', { class: 'wrap' }, p.description ?? ''),
    ];
    if (p.isDefault) {
      cells.push(h('td', {}, h('strong', { class: 'badge' }, 'default')));
    } else if (admin) {
      cells.push(h('td', {}, h('button', {
        type: 'button', class: 'secondary', 'data-focus-key': `default:${p.name}`,
        onclick: () => makeDefault(p.name),
      }, 'Make default', hidden(` ${p.name}`))));
    } else {
      cells.push(h('td', {}));
    }
    if (admin) cells.push(h('td', { class: 'number' }, String(p.usage?.length ?? 0)));
    if (probing) {
      const reach = p.reachability?.state ?? 'UNKNOWN';
      cells.push(h('td', {}, h('span', {
        class: `reach ${reach.toLowerCase()}`,
        title: p.reachability?.lastError ?? '',
      }, reach)));
    }
    if (admin) {
      cells.push(h('td', {}, h('div', { class: 'row-actions' },
        h('button', {
          type: 'button', class: 'secondary', 'data-focus-key': `edit:${p.name}`,
          onclick: (e) => openPlatformDialog(p.name, e.currentTarget),
        }, 'Edit', hidden(` ${p.name}`)),
        h('button', {
          type: 'button', class: 'danger', 'data-focus-key': `delete:${p.name}`,
          onclick: (e) => openDeleteDialog(p.name, e.currentTarget),
        }, 'Delete', hidden(` ${p.name}`)))));
    }
    return h('tr', { 'data-platform': p.name }, cells);
  }));
  $('platforms-empty').hidden = list.length > 0;
}

function renderProperties() {
  const form = $('properties');
  if (!state.properties || form.dataset.dirty === 'true') return;
  for (const name of PROPERTY_NAMES) {
    const input = form.elements[name];
    if (input.type === 'checkbox') input.checked = state.properties[name];
    else input.value = String(state.properties[name]);
  }
}

function renderGroups() {
  const names = [...state.platforms.keys()].sort();
  const container = $('groups');
  const tenants = [...state.tenants.keys()].sort();
  if (tenants.length === 0) {
    container.replaceChildren(h('p', { class: 'muted' }, 'No tenants yet.'));
    return;
  }
  container.replaceChildren(...tenants.map((tenantId) => {
    const groups = [...state.tenants.get(tenantId).entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    return h('div', { class: 'tenant' },
      h('h3', {}, tenantId),
      groups.length === 0
        ? h('p', { class: 'muted' }, 'No groups.')
        : h('ul', { class: 'groups' }, groups.map(([groupId, platform]) => {
          const id = `group-${tenantId}-${groupId}`.replace(/[^A-Za-z0-9_-]/g, '_');
          const options = [h('option', { value: '' }, '(none)')].concat(names.map((n) =>
            h('option', { value: n, selected: n === platform }, n)));
          if (platform && !names.includes(platform)) {
            options.push(h('option', { value: platform, selected: true }, platform));
          }
          return h('li', {},
            h('label', { for: id }, groupId, hidden(` (tenant ${tenantId}) platform`)),
            h('select', {
              id, 'data-focus-key': `group:${tenantId}/${groupId}`,
              'aria-describedby': `${id}-error`,
              onchange: (e) => setGroupPlatform(tenantId, groupId, e.currentTarget),
            }, options),
            h('p', { id: `${id}-error`, class: 'error' }));
        })));
  }));
}

/** Sessions and secrets change with every sign-in and renewal; they are left out. */
const shown = (change) => change.kind !== 'session' && change.kind !== 'secret';

const valueText = (value) => {
  if (value === undefined || value === null) return '—';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
};

/** What one change did, in a few words: `platform P1 added`, `platform P1: port 222 → 5060`,
 * `default: P1 → P2`. */
function describe(change) {
  const what = change.key ? `${change.kind} ${change.key}` : change.kind;
  const { before, after } = change;
  const isObject = (v) => v !== null && typeof v === 'object';
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])]
      .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
    const moved = keys.map((k) => `${k} ${valueText(before[k])} → ${valueText(after[k])}`);
    return `${what}: ${moved.join(', ') || 'unchanged'}`;
  }
  if (isObject(after)) return `${what} added`;
  if (isObject(before)) return `${what} removed`;
  return before === null || before === undefined
    ? `${what}: ${valueText(after)}`
    : `${what}: ${valueText(before)} → ${valueText(after)}`;
}

function renderChanges() {
  $('changes').replaceChildren(...state.changes.map((entry) => h('li', {},
    h('time', { datetime: entry.at }, new Date(entry.at).toLocaleString()),
    h('strong', {}, entry.actor),
    ' ',
    h('span', { class: 'operation' }, entry.operation),
    h('ul', { class: 'what' },
      entry.changes.filter(shown).map((change) => h('li', {}, describe(change)))))));
  if (state.changes.length === 0 && !$('changes-error').textContent) {
    $('changes').replaceChildren(h('li', { class: 'muted' }, 'No changes yet.'));
  }
}

// ---- forms and actions ---------------------------------------------------------------------

function clearErrors(form) {
  for (const slot of form.querySelectorAll('[data-error-for]')) slot.textContent = '';
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

/** Puts each error next to the field it names, or at the end of the form; focuses the
 * first field named. */
function showErrors(form, errors) {
  let first = null;
  for (const error of errors) {
    const field = error.extensions?.field ?? '';
    let slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (!slot) slot = form.querySelector('[data-error-for=""]');
    slot.textContent = slot.textContent ? `${slot.textContent} ${error.message}` : error.message;
    const input = field && form.elements[field];
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      first ??= input;
    }
  }
  first?.focus();
}

/** The name of the platform the dialog edits, or null when it adds one. */
let editing = null;
let dialogOpener = null;

function openPlatformDialog(name, opener) {
  const dialog = $('platform-dialog');
  const form = $('platform-form');
  clearErrors(form);
  editing = name;
  dialogOpener = opener;
  const p = name ? state.platforms.get(name) : null;
  $('platform-dialog-title').textContent = p ? `Edit ${p.name}` : 'Add platform';
  $('platform-save').textContent = p ? 'Save' : 'Add';
  form.elements.name.value = p?.name ?? '';
  form.elements.name.readOnly = Boolean(p);
  form.elements.netAddress.value = p?.netAddress ?? '';
  form.elements.port.value = p?.port ?? '';
  form.elements.transportProtocol.value = p?.transportProtocol ?? 'UDP';
  form.elements.mediaStream.value = p?.mediaStream ?? 'DUAL';
  form.elements.schemaVersion.value = p?.schemaVersion ?? 'V1_0';
  form.elements.supportVideoRecording.checked = p?.supportVideoRecording ?? false;
  form.elements.description.value = p?.description ?? '';
  dialog.showModal();
  (p ? form.elements.netAddress : form.elements.name).focus();
}

/** A typed number as the server should see it: digits become a number, anything else is
 * sent as typed so that the server's message names it. */
function number(text) {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  return /^-?\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

function platformInput(form) {
  const text = (name) => form.elements[name].value;
  return {
    netAddress: text('netAddress'),
    port: number(text('port')),
    transportProtocol: text('transportProtocol'),
    mediaStream: text('mediaStream'),
    schemaVersion: text('schemaVersion'),
    supportVideoRecording: form.elements.supportVideoRecording.checked,
    description: text('description') === '' ? null : text('description'),
  };
}

/** A value GraphQL's Int cannot carry is refused by the server's parser without naming the
 * field; say which field it is, in the server's words. */
function withFieldOfBadInt(errors, names) {
  return errors.map((error) => {
    if (error.extensions?.field) return error;
    const field = names.find((n) =>
      error.message.includes(`"input.${n}"`) || error.message.includes(`"${n}"`));
    return field ? { ...error, extensions: { ...error.extensions, field } } : error;
  });
}

async function savePlatform(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const input = platformInput(form);
  let answer;
  if (editing) {
    // Only what changed, so that a concurrent change of another field is kept.
    const before = state.platforms.get(editing) ?? {};
    const changed = Object.fromEntries(Object.entries(input)
      .filter(([key, value]) => (before[key] ?? null) !== value));
    if (Object.keys(changed).length === 0) {
      $('platform-dialog').close();
      return;
    }
    answer = await graphql(MODIFY_PLATFORM, { name: editing, input: changed });
  } else {
    answer = await graphql(ADD_PLATFORM, { input: { name: form.elements.name.value, ...input } });
  }
  const platform = answer.data?.modifyCallRecordingPlatform ?? answer.data?.addCallRecordingPlatform;
  if (!platform) {
    showErrors(form, withFieldOfBadInt(answer.errors ?? [], ['port']));
    return;
  }
  upsertPlatform(platform);
  render();
  $('platform-dialog').close();
}

async function makeDefault(name) {
  const answer = await graphql(MODIFY_PLATFORM, { name, input: { makeDefault: true } });
  const platform = answer.data?.modifyCallRecordingPlatform;
  if (!platform) {
    notice(errorText(answer.errors));
    return;
  }
  notice('');
  upsertPlatform(platform);
  render();
  // The button is gone (its row is the default now): focus stays in that row.
  document.querySelector(`[data-focus-key="${CSS.escape(`edit:${name}`)}"]`)?.focus();
}

let deleting = null;

function openDeleteDialog(name, opener) {
  deleting = name;
  dialogOpener = opener;
  clearErrors($('delete-form'));
  $('delete-question').textContent = `Delete the platform ${name}? This cannot be undone.`;
  $('delete-dialog').showModal();
  $('delete-form').querySelector('button.secondary').focus();
}

async function deletePlatform(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const answer = await graphql(DELETE_PLATFORM, { name: deleting });
  if (!answer.data?.deleteCallRecordingPlatform) {
    showErrors(form, answer.errors ?? []);
    return;
  }
  state.platforms.delete(deleting);
  dialogOpener = $('add-platform');
  render();
  $('delete-dialog').close();
}

async function saveProperties(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const changed = {};
  for (const name of PROPERTY_NAMES) {
    const input = form.elements[name];
    const value = input.type === 'checkbox' ? input.checked : number(input.value);
    if (value !== state.properties?.[name]) changed[name] = value;
  }
  if (Object.keys(changed).length === 0) return;
  const answer = await graphql(MODIFY_PROPERTIES, { input: changed });
  const properties = answer.data?.modifyCallRecordingProperties;
  if (!properties) {
    showErrors(form, withFieldOfBadInt(answer.errors ?? [], PROPERTY_NAMES));
    return;
  }
  state.properties = properties;
  form.dataset.dirty = 'false';
  renderProperties();
}

async function setGroupPlatform(tenantId, groupId, select) {
  const slot = document.getElementById(select.getAttribute('aria-describedby'));
  slot.textContent = '';
  select.removeAttribute('aria-invalid');
  const name = select.value === '' ? null : select.value;
  const answer = await graphql(SET_GROUP_PLATFORM, { tenantId, groupId, name });
  const group = answer.data?.setGroupCallRecordingPlatform;
  if (!group) {
    slot.textContent = errorText(answer.errors);
    select.setAttribute('aria-invalid', 'true');
    return;
  }
  assignGroup(group.tenantId, group.groupId, group.callRecordingPlatform ?? null);
  render();
}

// ---- start ---------------------------------------------------------------------------------

/** After sign in: who the caller is decides what is shown and how it stays current. */
async function start() {
  const answer = await graphql(ME);
  const me = answer.data?.me;
  if (!session) return;
  if (!me) {
    endSession(errorText(answer.errors));
    return;
  }
  session.me = me;
  const where = [me.tenantId, me.groupId].filter(Boolean).join('/');
  $('who').textContent = `${me.username} (${LEVELS[me.level]}${where ? `, ${where}` : ''})`;
  $('sign-in-section').hidden = true;
  $('session').hidden = false;
  $('dashboard').hidden = false;
  const admin = me.level === 'SYSTEM_ADMIN';
  $('groups-section').hidden = false;
  $('platforms').closest('section').hidden = false;
  for (const el of document.querySelectorAll('[data-needs="system"]')) el.hidden = !admin;
  $('properties').dataset.dirty = 'false';
  if (me.level === 'END_USER') {
    $('groups-section').hidden = true;
    $('platforms').closest('section').hidden = true;
    notice('An End User has nothing to manage here.');
    setLive('', false);
    return;
  }
  if (admin) {
    // The state is fetched once the subscription is live (see `received`).
    startEvents();
  } else {
    setLive('Not live: live updates need a System Admin', false);
    await loadState();
  }
}

function closeDialogOnCancel(dialog) {
  dialog.querySelector('[data-close]').addEventListener('click', () => dialog.close());
  // Focus goes back where it was when the dialog opened (or near it, if that row is gone).
  dialog.addEventListener('close', () => {
    if (dialogOpener?.isConnected) dialogOpener.focus();
    else $('add-platform').focus();
  });
}

$('sign-in').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', signOut);
$('add-platform').addEventListener('click', (e) => openPlatformDialog(null, e.currentTarget));
$('reload').addEventListener('click', () => loadState());
$('platform-form').addEventListener('submit', savePlatform);
$('delete-form').addEventListener('submit', deletePlatform);
$('properties').addEventListener('submit', saveProperties);
$('properties').addEventListener('input', (e) => { e.currentTarget.dataset.dirty = 'true'; });
closeDialogOnCancel($('platform-dialog'));
closeDialogOnCancel($('delete-dialog'));
$('username').focus();
