// Checks Resource Graph queries with Microsoft's Kusto parser (@kusto/language-service-next).
// Usage: node scripts/kql-lint.js QUERY...   Prints one JSON line per query; exits 1 on any error.
'use strict';
require('@kusto/language-service-next/bridge.min.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.min.js');

const Kusto = globalThis.Kusto.Language;
// Resource Graph's common columns. `kind` is a keyword and must be quoted in a schema,
// otherwise the schema parser stops there without an error (hence the count check below).
const SCHEMA = "(id:string, name:string, type:string, tenantId:string, ['kind']:string, location:string, " +
  "resourceGroup:string, subscriptionId:string, managedBy:string, sku:dynamic, plan:dynamic, " +
  "properties:dynamic, tags:dynamic, identity:dynamic, zones:dynamic, extendedLocation:dynamic)";
const TABLES = ['resources', 'resourcecontainers', 'kubernetesconfigurationresources',
  'policyresources', 'securityresources'];

const symbols = TABLES.map((name) => new Kusto.Symbols.TableSymbol.$ctor7(name, SCHEMA, null));
for (const table of symbols) {
  if (Bridge.toArray(table.Columns).length !== 16) throw new Error(`schema of ${table.Name} parsed short`);
}
const globals = Kusto.GlobalState.Default.WithDatabase(new Kusto.Symbols.DatabaseSymbol.ctor('arg', symbols));
const list = (diagnostics) => Bridge.toArray(diagnostics).map((d) => ({
  severity: d.Severity, code: d.Code, message: d.Message, start: d.Start, length: d.Length,
}));

let failed = false;
for (const query of process.argv.slice(2)) {
  const code = Kusto.KustoCode.ParseAndAnalyze(query, globals);
  const diagnostics = list(code.GetDiagnostics());
  const ok = !diagnostics.some((d) => d.severity === 'Error');
  const columns = code.ResultType && code.ResultType.Columns
    ? Bridge.toArray(code.ResultType.Columns).map((c) => `${c.Name}:${c.Type.Name}`) : [];
  failed = failed || !ok;
  console.log(JSON.stringify({ ok, diagnostics, columns }));
}
process.exit(failed ? 1 : 0);
