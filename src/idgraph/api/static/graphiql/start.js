// idgraph's GraphiQL page: queries go to the page's own URL (/graphql). Headers, which
// hold an API key, never reach the browser's storage: GraphiQL is told not to persist
// them, and as its query history keeps each query's headers all the same, it gets a
// storage that drops every "headers" entry before writing to localStorage. Headers an
// earlier version of the page persisted are dropped as the page loads.
(function () {
  'use strict';

  function scrub(value) {
    var parsed;
    try {
      parsed = JSON.parse(value);
    } catch (notJson) {
      return value; // a query's text, a setting
    }
    return JSON.stringify(parsed, function (name, item) {
      return name === 'headers' ? undefined : item;
    });
  }

  var storage = {
    getItem: function (key) {
      return localStorage.getItem(key);
    },
    setItem: function (key, value) {
      localStorage.setItem(key, scrub(value));
    },
    removeItem: function (key) {
      localStorage.removeItem(key);
    },
    clear: function () {
      localStorage.clear();
    },
    get length() {
      return localStorage.length;
    },
  };

  localStorage.removeItem('graphiql:headers');
  Object.keys(localStorage).forEach(function (key) {
    if (key.indexOf('graphiql:') === 0) storage.setItem(key, localStorage.getItem(key));
  });

  var headers = JSON.stringify(
    { Authorization: 'Bearer <paste an API key here>', 'X-Purpose': 'support' },
    null,
    2
  );
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: window.location.pathname }),
      defaultHeaders: headers,
      shouldPersistHeaders: false,
      storage: storage,
      defaultEditorToolsVisibility: 'headers',
    })
  );
})();
