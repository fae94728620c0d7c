; Guardflow highlights. General patterns come first, specific ones after:
; where several patterns match a node, the last one wins (tree-sitter's
; highlighter, Neovim).

; Operators and punctuation
[
  "->"
  "||"
  "&&"
  "!"
  "|"
  "*"
  "="
  "<"
  ">"
  "<="
  ">="
  "=="
  "!="
  ";"
] @operator
[
  "("
  ")"
  "["
  "]"
  "{"
  "}"
] @punctuation.bracket
[
  ","
  "."
  ":"
] @punctuation.delimiter

; Names
(identifier) @variable

; Comments
(doc_comment) @comment.documentation
(comment) @comment

; Strings
(interpolation "{" @punctuation.special)
(interpolation "}" @punctuation.special)
(interpolation_path) @variable
(escape_sequence) @string.escape
(string) @string
; `python"""…"""`: the language names a type; the text is verbatim code
(code_literal language: (identifier) @type)
(code_text) @string
(length "len" @function.builtin)

; Literals
(integer) @number
(float) @number
(duration) @number
(boolean) @constant.builtin

; Properties (`:retry`, `:max-tokens`, …)
(property) @property

; Keywords
"use" @keyword.import
"std" @module
[
  "input"
  "type"
  "generator"
  "guard"
  "extern"
  "effect"
  "action"
  "task"
  "method"
  "resource"
  "test"
] @keyword
[
  "on"
  "after"
  "calls"
  "satisfies"
] @keyword

; Words that are constants in their own places
(feedback_policy "last" @constant.builtin)
(feedback_policy (identifier) @constant.builtin)
(strategy "best-of" @constant.builtin)
(strategy (identifier) @constant.builtin)
(method_property policy: (identifier) @constant.builtin)
(expectation outcome: (identifier) @constant.builtin)

; Definitions
(action_declaration name: (identifier) @function)
(task_declaration name: (identifier) @function)
(guard_declaration name: (identifier) @function)
(generator_declaration name: (identifier) @function)
(extern_declaration name: (identifier) @function)
(method_declaration name: (identifier) @function.method)
(input_declaration name: (identifier) @constant)
(resource_declaration name: (identifier) @constant)
(parameter name: (identifier) @variable.parameter)
(field_declaration name: (identifier) @property)
(subtask label: (identifier) @label)

; Types
(type_identifier) @type

; Calls
(combinator name: _ @function.builtin)
(call function: (identifier) @function.call)
(argument name: (identifier) @variable.parameter)

