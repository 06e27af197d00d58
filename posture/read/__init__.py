"""Database reads for the pages, one module per area of web/views/: fleet (overview, scopes),
clusters, controls (benchmarks and controls), scans, governance.

Fleet, section and control counts come from FleetSnapshot (computed once per evaluation);
pages never aggregate raw results at request time. Drill-downs to clusters query ControlResult
(indexed on control and status) joined to Cluster, one page at a time. Every function here
issues a fixed number of queries whatever the fleet size.
"""
