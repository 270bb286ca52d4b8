// Validates GraphQL documents against a schema with graphql-js, the reference
// implementation that GraphiQL, Apollo tooling and code generators use.
//
//   node validate.cjs NODE_MODULES SCHEMA.graphql DOCUMENTS.json
//
// DOCUMENTS.json is an array of strings. Prints a JSON array with one entry per document:
// the messages graphql-js reports for it (empty when it is valid).
'use strict';
const fs = require('fs');
const path = require('path');

const [modules, schemaPath, documentsPath] = process.argv.slice(2);
const { buildSchema, parse, validate } = require(path.join(modules, 'graphql'));

const schema = buildSchema(fs.readFileSync(schemaPath, 'utf8'));
const documents = JSON.parse(fs.readFileSync(documentsPath, 'utf8'));
const results = documents.map((text) => {
  let document;
  try {
    document = parse(text);
  } catch (e) {
    return [`parse: ${e.message}`];
  }
  return validate(schema, document).map((e) => e.message);
});
process.stdout.write(JSON.stringify(results));
