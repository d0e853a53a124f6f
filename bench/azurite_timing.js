// Preloaded (after azurite_index.js) by `python -m bench.growth_probe` only, never by
// `make bench`: Azurite's own share of each request, so that a latency growing with the
// customer's size can be put on Azurite or on our process by measurement.
//
// Per HTTP request it records the server time (request event to response "finish"), the time
// inside the Table store's query methods, the time inside LokiJS `findOne` (point lookups),
// and the rows that LokiJS `where` predicates were run over (a scan shows as rows ~ table size;
// an index-narrowed range as ~ the rows returned). On SIGUSR2 it writes the records as JSON
// lines to $AZURITE_TIMING_OUT and starts afresh. Requests are assumed one at a time (the probe
// sends them sequentially), so the current request is a single variable.
"use strict";

const Module = require("module");
const http = require("http");
const fs = require("fs");

const OUT = process.env.AZURITE_TIMING_OUT || "azurite-timing.jsonl";
let records = [];
let current = null;

function since(t0) {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event === "request") {
    const t0 = process.hrtime.bigint();
    const record = { method: req.method, url: req.url.slice(0, 200), store_ms: 0, find_one_ms: 0, rows: 0 };
    current = record;
    res.on("finish", () => {
      record.server_ms = since(t0);
      records.push(record);
    });
  }
  return emit.apply(this, arguments);
};

process.on("SIGUSR2", () => {
  fs.writeFileSync(OUT, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  records = [];
});

const done = new Set();
const load = Module._load;
Module._load = function (request) {
  const exported = load.apply(this, arguments);
  if (request === "lokijs" && !done.has("lokijs")) {
    done.add("lokijs");
    const where = exported.Resultset.prototype.where;
    exported.Resultset.prototype.where = function () {
      if (current) current.rows += this.filterInitialized ? this.filteredrows.length : this.collection.data.length;
      return where.apply(this, arguments);
    };
    const findOne = exported.Collection.prototype.findOne;
    exported.Collection.prototype.findOne = function () {
      const t0 = process.hrtime.bigint();
      try {
        return findOne.apply(this, arguments);
      } finally {
        if (current) current.find_one_ms += since(t0);
      }
    };
  } else if (request.endsWith("LokiTableMetadataStore") && !done.has("store")) {
    done.add("store");
    const proto = (exported.default || exported).prototype;
    for (const name of ["queryTableEntities", "queryTableEntitiesWithPartitionAndRowKey"]) {
      const method = proto[name];
      proto[name] = async function () {
        const t0 = process.hrtime.bigint();
        try {
          return await method.apply(this, arguments);
        } finally {
          if (current) current.store_ms += since(t0);
        }
      };
    }
  }
  return exported;
};
