// Preloaded into the benchmark's Azurite (`node --require`, via NODE_OPTIONS) so that the
// emulator looks rows up the way Azure Table Storage does: by their keys, not by scanning.
//
// Why: Azurite 3.35 keeps each table in a LokiJS collection with binary indexes on PartitionKey
// and RowKey, but
//   1. every point lookup is findOne({PartitionKey, RowKey}); LokiJS uses an index for the
//      *first* term only, and our design puts all rows of a table in one partition, so each
//      point read, insert, update or delete scans the whole partition (O(rows));
//   2. every query runs a JavaScript predicate over every row of the table, then sorts all the
//      matches, and only then applies `$top` (O(rows), and a 11-row page of a 100k-member group
//      sorts 100k rows: 250 ms).
// Stock Azurite therefore slows down linearly with table size (bench/README.md has the numbers:
// bulk load fell from ~800 to ~75 users/s by 15k users), which says nothing about Azure, where
// PartitionKey+RowKey is the clustered index and a page stops after `$top` rows. This file
// changes no result, only the access path:
//   1. findOne({PartitionKey, RowKey}) is asked as findOne({RowKey, PartitionKey}), so LokiJS
//      narrows by the RowKey index first (O(log rows)) and then checks the partition;
//   2. an entity query whose filter is a pure `and` of terms including `RowKey ge|gt 'lo'` and
//      `RowKey lt|le 'hi'` starts from the RowKey index range [lo, hi]; Azurite's own predicate,
//      continuation, sort and `$top` then run unchanged over those rows;
//   3. when the filter is *only* `PartitionKey eq 'p'` and such RowKey bounds (our store's range
//      queries), the rows are taken from the index in key order, checked against those exact
//      terms and the continuation, and collection stops at `$top` + 1 rows: the page Azure
//      would return, in O(log rows + page).
// Only ranges whose bounds start with the same letter are narrowed, so LokiJS's numeric-string
// ordering can never drop a row. The store contract suite passes with it (bench/README.md).
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
  let loOp = null;
  let hiOp = null;
  let partition = null;
  let keysOnly = true;
  for (const term of shape.split(/\s+and\s+/i)) {
    const rk = /^\s*RowKey\s+(ge|gt|le|lt)\s+\$(\d+)\s*$/.exec(term);
    const pk = /^\s*PartitionKey\s+eq\s+\$(\d+)\s*$/.exec(term);
    if (rk) {
      const value = literals[Number(rk[2])];
      if (rk[1] === "ge" || rk[1] === "gt") [lo, loOp] = [value, rk[1]];
      else [hi, hiOp] = [value, rk[1]];
    } else if (pk && partition === null) {
      partition = literals[Number(pk[1])];
    } else {
      keysOnly = false;
    }
  }
  // LokiJS compares two strings as numbers when Number() parses both: keys starting with a
  // digit, a sign, a dot or "I" (Infinity) are left to the scan. Lowercase "i" never parses
  // (Number is case-sensitive), so the store's document range "id|..." is narrowed too.
  if (lo === null || hi === null || !lo || !hi || lo[0] !== hi[0] || !/[A-HJ-Za-z]/.test(lo[0])) {
    return null; // numeric-looking keys sort differently in LokiJS: leave those to the scan
  }
  return { lo, hi, loOp, hiOp, partition: keysOnly ? partition : null };
}

function decode(token) {
  return token === undefined ? undefined : Buffer.from(token, "base64").toString("utf8");
}

// The first `limit` rows of partition `r.partition` with RowKey in the bounds of `r`, at or
// after the continuation row key, in RowKey order, as a LokiJS result set.
function firstRows(coll, r, nextRowKey, limit) {
  if (coll.adaptiveBinaryIndices !== true) coll.ensureIndex("RowKey");
  const index = coll.binaryIndices.RowKey;
  const start = nextRowKey !== undefined && nextRowKey > r.lo ? nextRowKey : r.lo;
  const [first, last] = coll.calculateRange("$between", "RowKey", [start, r.hi]);
  const rows = [];
  for (let i = first; i <= last && i >= 0 && rows.length < limit; i++) {
    const at = index.values[i];
    const doc = coll.data[at];
    const key = doc.RowKey;
    if (doc.PartitionKey !== r.partition) continue;
    if (r.loOp === "gt" ? key <= r.lo : key < r.lo) continue;
    if (r.hiOp === "lt" ? key >= r.hi : key > r.hi) continue;
    if (nextRowKey !== undefined && key < nextRowKey) continue;
    rows.push(at);
  }
  const result = coll.chain();
  result.filteredrows = rows;
  result.filterInitialized = true;
  return result;
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
    const [nextPartitionKey, nextRowKey] = rest.map(decode);
    const top = queryOptions.top;
    const limit = (top === undefined || top === null || top > 1000 ? 1000 : top) + 1;
    const exact = range.partition !== null &&
      (nextPartitionKey === undefined || nextPartitionKey === range.partition);
    const store = this;
    const narrowed = Object.create(this);
    narrowed.getEntityCollection = function (...args) {
      const coll = store.getEntityCollection(...args);
      if (!coll.binaryIndices || !coll.binaryIndices.RowKey) return coll;
      const view = Object.create(coll);
      view.chain = exact
        ? () => firstRows(coll, range, nextRowKey, limit)
        : () => coll.chain().find({ RowKey: { $between: [range.lo, range.hi] } });
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
