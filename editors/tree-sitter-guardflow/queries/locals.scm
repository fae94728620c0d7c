; Scopes: an item's parameters are visible in its body; a method's
; subtask labels in that method.
[
  (action_declaration)
  (task_declaration)
  (guard_declaration)
  (extern_declaration)
  (method_declaration)
] @local.scope

(parameter name: (identifier) @local.definition)
(subtask label: (identifier) @local.definition)

(identifier) @local.reference
