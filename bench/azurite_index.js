// Preloaded into the benchmark's Azurite (`node --require`, via NODE_OPTIONS) so that the
// emulator looks rows up the way Azure Table Storage does: by their keys, not by scanning.
//
// Why: Azurite 3.35 keeps each table in a LokiJS collection with binary indexes on PartitionKey
// and RowKey, but
//   1. every point lookup is findOne({PartitionKey, RowKey}); LokiJS uses an index for the
//      *first* term only, and our design puts all rows of a table in one partition, so each
//      point read, insert, update or delete scans the whole partition (O(rows));
//   2. every query (a RowKey range, e.g. `externalId eq`, a user's groups) runs a JavaScript
//      predicate over every row of the table (O(rows)).
// Stock Azurite therefore slows down linearly with table size (bench/README.md has the numbers:
// bulk load fell from ~500 to ~56 users/s by 20k users), which says nothing about Azure, where
// PartitionKey+RowKey is the clustered index. This file changes no result, only the access path:
//   1. findOne({PartitionKey, RowKey}) is asked as findOne({RowKey, PartitionKey}), so LokiJS
//      narrows by the RowKey index first (O(log rows)) and then checks the partition;
//   2. an entity query whose filter is a pure `and` of terms including `RowKey ge 'lo'` and
//      `RowKey lt|le 'hi'` starts from the RowKey index range [lo, hi]; Azurite's own predicate
//      and paging then run unchanged over those rows. Only ranges whose bounds start with the
//      same letter are narrowed, so LokiJS's numeric-string ordering can never drop a row.
// The store contract suite passes with it (see bench/README.md).
"use strict";

const Module = require("module");
const path = require("path");

const STORE_FILE = path.join("table", "persistence", "LokiTableMetadataStore.js");
const patched = new Set();

function patchLoki(loki) {
  const proto = loki.Collection && loki.Collection.prototype;
  if (!proto || patched.has(proto)) return;
  patched.add(proto);
  const findOne = proto.findOne;
  proto.findOne = function (query) {
    if (query && typeof query === "object" && "PartitionKey" in query && "RowKey" in query &&
        Object.keys(query).length === 2 && typeof query.RowKey === "string" &&
        this.binaryIndices && this.binaryIndices.RowKey) {
      query = { RowKey: query.RowKey, PartitionKey: query.PartitionKey };
    }
    return findOne.call(this, query);
  };
}

// OData string literals are single-quoted with '' as the escaped quote.
const LITERAL = /'((?:[^']|'')*)'/g;

function rowKeyRange(filter) {
  if (typeof filter !== "string") return null;
  const literals = [];
  const shape = filter.replace(LITERAL, (_, text) => {
    literals.push(text.replace(/''/g, "'"));
    return `$${literals.length - 1}`;
  });
  // A pure conjunction only: no or / not / grouping that could widen the result.
  if (/\b(or|not)\b|[()]/i.test(shape)) return null;
  let lo = null;
  let hi = null;
  for (const term of shape.split(/\s+and\s+/i)) {
    const m = /^\s*RowKey\s+(ge|gt|le|lt)\s+\$(\d+)\s*$/.exec(term);
    if (!m) continue;
    const value = literals[Number(m[2])];
    if (m[1] === "ge" || m[1] === "gt") lo = value;
    else hi = value;
  }
  if (lo === null || hi === null || !lo || !hi || lo[0] !== hi[0] || !/[A-HJ-Za-hj-z]/.test(lo[0])) {
    return null; // numeric-looking keys sort differently in LokiJS: leave those to the scan
  }
  return [lo, hi];
}

function patchStore(exported) {
  const Store = exported && (exported.default || exported);
  const proto = Store && Store.prototype;
  if (!proto || patched.has(proto) || typeof proto.queryTableEntities !== "function") return;
  patched.add(proto);
  const query = proto.queryTableEntities;
  proto.queryTableEntities = function (context, account, table, queryOptions, ...rest) {
    const range = rowKeyRange(queryOptions && queryOptions.filter);
    if (range === null) return query.call(this, context, account, table, queryOptions, ...rest);
    const store = this;
    const narrowed = Object.create(this);
    narrowed.getEntityCollection = function (...args) {
      const coll = store.getEntityCollection(...args);
      if (!coll.binaryIndices || !coll.binaryIndices.RowKey) return coll;
      const view = Object.create(coll);
      view.chain = () => coll.chain().find({ RowKey: { $between: range } });
      return view;
    };
    return query.call(narrowed, context, account, table, queryOptions, ...rest);
  };
}

const load = Module._load;
Module._load = function (request, parent, isMain) {
  const exported = load.apply(this, arguments);
  if (request === "lokijs") {
    patchLoki(exported);
  } else if (request.endsWith("LokiTableMetadataStore") || request.endsWith(STORE_FILE)) {
    patchStore(exported);
  }
  return exported;
};
