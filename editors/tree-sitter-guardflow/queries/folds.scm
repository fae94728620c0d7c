; Blocks, records, maps, multi-line property values and strings fold.
[
  (action_declaration)
  (task_declaration)
  (method_declaration)
  (test_declaration)
  (record_type)
  (map)
  (action_property)
  (method_property)
  (string)
] @fold
