; Blocks, records, multi-line property values and strings fold.
[
  (action_declaration)
  (task_declaration)
  (method_declaration)
  (test_declaration)
  (record_type)
  (action_property)
  (method_property)
  (string)
] @fold
