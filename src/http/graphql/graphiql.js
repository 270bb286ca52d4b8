// Starts GraphiQL on the page served at GET /graphql. Everything the page loads comes from
// this server (see assets/graphiql/), so it works without internet access.
(function () {
  'use strict';
  var root = document.getElementById('graphiql');
  var url = new URL(root.dataset.endpoint, window.location.href);
  var wsUrl = new URL(root.dataset.subscriptionEndpoint, window.location.href);
  wsUrl.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';

  // Queries and mutations are POSTed to /graphql with the headers of the Headers tab;
  // subscriptions use the WebSocket, whose connection_init payload carries those headers.
  var fetcher = GraphiQL.createFetcher({ url: url.href, subscriptionUrl: wsUrl.href });

  var defaultQuery = [
    '# callrec-gateway GraphQL',
    '#',
    '# Put an access token in the Headers tab below:',
    '#   {"Authorization": "Bearer <access_token>"}',
    '# (POST /api/v1/login/ gives one; headers are',
    '# not stored in the browser). Run: Ctrl-Enter.',
    '# Docs and completion need the schema, which',
    '# needs the token: then Shift-Ctrl-R re-fetches it.',
    '',
    '{',
    '  callRecordingPlatforms {',
    '    systemDefault',
    '    platforms { name netAddress port isDefault }',
    '  }',
    '}',
    ''
  ].join('\n');

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: '{\n  "Authorization": "Bearer <access_token>"\n}',
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: false
    })
  );
})();
