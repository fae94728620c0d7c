/**
 * @file Tree-sitter grammar for guardflow, a workflow language for LLM work.
 * @license MIT OR Apache-2.0
 *
 * It follows the normative pest grammar (grammar/guardflow.pest) rule for
 * rule, with one difference: it is for editors, so it reads well-formed
 * programs and leaves the explanation of malformed ones to the compiler
 * (an unknown property or a bad `{interpolation}` is an ERROR node here).
 *
 * The keyword and property lists below are checked against the pest
 * grammar and the lexer by `tests/editors.rs`; `kw` and `prop` refuse a
 * word that is not listed, and generation fails when a listed word is not
 * used, so the lists and the rules cannot drift apart.
 */

/// Words with a fixed meaning (src/syntax/lexer.rs KEYWORDS).
const KEYWORDS = [
  'use', 'std', 'input', 'type', 'generator', 'guard', 'extern', 'effect',
  'action', 'task', 'method', 'resource', 'test', 'on', 'after', 'for', 'in',
  'max',
];

/// Every property name the grammar knows, without its colon.
const PROPERTIES = [
  'default-max-tokens', 'default-p', 'default-retry', 'default-timeout',
  'effect', 'escalate-to', 'expect', 'feedback', 'generate', 'guard',
  'history', 'idempotent', 'max-depth', 'max-escalations', 'max-tokens', 'on-fail',
  'ordering', 'p', 'parallel', 'pre', 'pre-guard', 'result', 'retry', 'role', 'run',
  'shared', 'strategy', 'subtasks', 'timeout', 'uses', 'with',
];

/// The guard combinators, reserved in the guard namespace.
const COMBINATORS = ['all', 'any', 'majority', 'par'];

const NAME = /[A-Za-z_][A-Za-z0-9_]*/;

const usedKeywords = new Set();
const usedProperties = new Set();

function kw(word) {
  if (!KEYWORDS.includes(word)) throw new Error(`'${word}' is not in KEYWORDS`);
  usedKeywords.add(word);
  return word;
}

function prop($, name) {
  if (!PROPERTIES.includes(name)) throw new Error(`':${name}' is not in PROPERTIES`);
  usedProperties.add(name);
  return alias(':' + name, $.property);
}

/// `rule (, rule)* ,?`
function commaSep1(rule) {
  return seq(rule, repeat(seq(',', rule)), optional(','));
}

function commaSep(rule) {
  return optional(commaSep1(rule));
}

/// A name in a type position.
function typeName($) {
  return alias($.identifier, $.type_identifier);
}

const PREC = { or: 1, and: 2, not: 3 };

const guardflow = grammar({
  name: 'guardflow',

  word: $ => $.identifier,

  extras: $ => [/\s/, $.comment, $.doc_comment],

  rules: {
    source_file: $ => repeat($._item),

    _item: $ => choice(
      $.use_declaration,
      $.input_declaration,
      $.type_declaration,
      $.generator_declaration,
      $.guard_declaration,
      $.extern_declaration,
      $.resource_declaration,
      $.action_declaration,
      $.task_declaration,
      $.test_declaration,
      $.file_default,
    ),

    // ─── comments ────────────────────────────────────────────────────────

    // `///` starts a doc comment; `//` followed by anything else (`////`
    // included) a plain one.
    doc_comment: _ => token(/\/\/\/([^\/\n].*)?/),
    comment: _ => token(/\/\/(\/\/.*|[^\/\n].*)?/),

    // ─── items ───────────────────────────────────────────────────────────

    use_declaration: $ => seq(
      kw('use'),
      choice($.std_import, field('path', $.string)),
    ),
    std_import: $ => seq(kw('std'), '.', '{', commaSep1($.identifier), '}'),

    input_declaration: $ => seq(
      kw('input'),
      field('name', $.identifier),
      ':',
      field('type', $._type),
      optional(seq('=', field('default', $._expression))),
    ),

    type_declaration: $ => seq(
      kw('type'),
      field('name', typeName($)),
      '=',
      field('type', $._type),
    ),

    generator_declaration: $ => seq(
      kw('generator'),
      field('name', $.identifier),
      '=',
      field('value', $._callable),
    ),

    guard_declaration: $ => seq(
      kw('guard'),
      field('name', $.identifier),
      optional(field('parameters', $.parameters)),
      optional(seq(kw('on'), field('subject', $._type))),
      '=',
      field('body', $._guard_expression),
    ),

    extern_declaration: $ => seq(
      kw('extern'),
      choice(
        seq(kw('guard'), field('name', $.identifier), optional(field('parameters', $.parameters)),
          kw('on'), field('subject', $._type)),
        seq(kw('generator'), field('name', $.identifier), optional(field('parameters', $.parameters))),
        seq(kw('effect'), field('name', $.identifier), optional(field('parameters', $.parameters)),
          kw('on'), field('subject', $._type)),
      ),
    ),

    resource_declaration: $ => seq(
      kw('resource'),
      field('name', $.identifier),
      ':',
      field('capacity', $.integer),
      optional(prop($, 'shared')),
    ),

    file_default: $ => seq(
      choice(
        prop($, 'default-retry'),
        prop($, 'default-timeout'),
        prop($, 'default-p'),
        prop($, 'default-max-tokens'),
      ),
      field('value', $._number),
    ),

    parameters: $ => seq('(', commaSep($.parameter), ')'),
    parameter: $ => seq(
      field('name', $.identifier),
      ':',
      field('type', $._type),
      optional(seq('=', field('default', $._expression))),
    ),

    // ─── types ───────────────────────────────────────────────────────────

    _type: $ => choice($.union_type, $._type_atom),
    union_type: $ => seq($._type_atom, repeat1(seq('|', $._type_atom))),
    _type_atom: $ => choice($.list_type, $.record_type, $.generic_type, typeName($)),
    generic_type: $ => seq(field('name', typeName($)), '<', field('argument', $._type), '>'),
    list_type: $ => seq('[', $._type, optional(seq(';', kw('max'), field('max', $.integer))), ']'),
    record_type: $ => seq('{', commaSep($.field_declaration), '}'),
    field_declaration: $ => seq(field('name', $.identifier), ':', field('type', $._type)),

    // ─── actions ─────────────────────────────────────────────────────────

    action_declaration: $ => seq(
      kw('action'),
      field('name', $.identifier),
      field('parameters', $.parameters),
      '->',
      field('output', $._type),
      field('body', $.action_body),
    ),
    action_body: $ => seq('{', repeat($.action_property), '}'),

    action_property: $ => choice(
      seq(prop($, 'generate'), field('generator', $._callable), field('prompt', $.string)),
      seq(prop($, 'role'), $.string),
      seq(choice(prop($, 'guard'), prop($, 'pre-guard'), prop($, 'pre')), $._guard_expression),
      seq(choice(prop($, 'retry'), prop($, 'timeout'), prop($, 'max-tokens'), prop($, 'p')), $._number),
      seq(prop($, 'effect'), $._callable),
      prop($, 'idempotent'),
      seq(prop($, 'uses'), $._uses),
      seq(prop($, 'feedback'), $.feedback_policy),
      seq(prop($, 'strategy'), $.strategy),
    ),

    strategy: $ => choice(
      seq('best-of', '(', $.integer, ')'),
      $.identifier,
    ),

    feedback_policy: $ => choice(
      seq('last', optional(seq('(', $.integer, ')'))),
      $.identifier,
    ),

    _uses: $ => choice(seq('(', commaSep1($.resource_use), ')'), $.resource_use),
    resource_use: $ => seq(
      field('resource', $.identifier),
      optional(seq('*', field('units', $.integer))),
    ),

    // ─── tasks ───────────────────────────────────────────────────────────

    task_declaration: $ => seq(
      kw('task'),
      field('name', $.identifier),
      field('parameters', $.parameters),
      optional(seq('->', field('output', $._type))),
      optional(seq(prop($, 'max-depth'), field('max_depth', $.integer))),
      field('body', $.task_body),
    ),
    task_body: $ => seq('{', repeat($.method_declaration), '}'),

    method_declaration: $ => seq(
      kw('method'),
      field('name', $.identifier),
      field('body', $.method_body),
    ),
    method_body: $ => seq('{', repeat($.method_property), '}'),

    method_property: $ => choice(
      seq(prop($, 'pre'), $._guard_expression),
      seq(prop($, 'subtasks'), '(', commaSep($.subtask), ')'),
      seq(prop($, 'ordering'), choice($.ordering_group, $.identifier)),
      seq(prop($, 'result'), field('result', choice($.field_path, $.identifier))),
      seq(prop($, 'uses'), $._uses),
      seq(prop($, 'on-fail'), field('policy', $.identifier)),
      seq(prop($, 'history'), field('history', $.identifier)),
    ),

    subtask: $ => seq(
      field('label', $.identifier),
      ':',
      field('call', choice($.for_each, $._callable)),
      optional($.escalation),
    ),

    // `for item in p.items => implement(item) :parallel 4`
    for_each: $ => seq(
      kw('for'),
      field('item', $.identifier),
      kw('in'),
      field('source', $.value_path),
      '=>',
      field('call', $._callable),
      optional(seq(prop($, 'parallel'), field('parallel', $.integer))),
    ),
    value_path: $ => seq($.identifier, repeat(seq('.', $.identifier))),

    escalation: $ => seq(
      prop($, 'escalate-to'),
      field('target', $.identifier),
      kw('after'),
      field('failures', $.integer),
      optional(seq(prop($, 'max-escalations'), field('max', $.integer))),
    ),

    // `(a ; b)`, `(a || b)`, `(a < b, a < c)`, nested freely; the compiler
    // checks that a group uses one kind of separator.
    ordering_group: $ => seq(
      '(',
      $._ordering_element,
      repeat(seq(choice(';', '||', ','), $._ordering_element)),
      ')',
    ),
    _ordering_element: $ => choice($.ordering_group, $.ordering_chain, $.identifier),
    ordering_chain: $ => seq($.identifier, repeat1(seq('<', $.identifier))),

    // ─── guard expressions ───────────────────────────────────────────────

    _guard_expression: $ => choice(
      $.binary_guard,
      $.not_guard,
      $.parenthesized_guard,
      $.combinator,
      $.comparison,
      $.boolean,
      $.field_path,
      $._callable,
    ),
    // typed predicates: `v.score >= 0.8`, `len(p.items) == 0`
    comparison: $ => seq(
      field('left', $._term),
      field('operator', choice('==', '!=', '<=', '>=', '<', '>')),
      field('right', $._term),
    ),
    _term: $ => choice($.length, $.string, $._number, $.boolean, $.field_path, $.identifier),
    length: $ => seq('len', '(', choice($.field_path, $.identifier), ')'),
    binary_guard: $ => choice(
      prec.left(PREC.or, seq(field('left', $._guard_expression), field('operator', '||'),
        field('right', $._guard_expression))),
      prec.left(PREC.and, seq(field('left', $._guard_expression), field('operator', '&&'),
        field('right', $._guard_expression))),
    ),
    not_guard: $ => prec(PREC.not, seq('!', $._guard_expression)),
    parenthesized_guard: $ => seq('(', $._guard_expression, ')'),
    combinator: $ => seq(
      field('name', choice(...COMBINATORS)),
      '(',
      commaSep1($._guard_expression),
      ')',
    ),

    // ─── calls and values ────────────────────────────────────────────────

    _callable: $ => choice($.call, $.identifier),
    call: $ => seq(field('function', $.identifier), field('arguments', $.arguments)),
    arguments: $ => seq('(', commaSep($.argument), ')'),
    argument: $ => seq(optional(seq(field('name', $.identifier), ':')), field('value', $._expression)),

    _expression: $ => choice(
      $.code_literal, $.string, $._number, $.boolean, $.list, $.map, $.field_path, $._callable,
    ),
    // `p.items`: a value's record fields
    field_path: $ => seq($.identifier, repeat1(seq('.', $.identifier))),
    // `python"""…"""`: a Code<lang> value, verbatim (no escapes or
    // interpolations; a `\` only keeps the next character from ending it)
    code_literal: $ => seq(
      field('language', $.identifier),
      field('code', alias(token.immediate(choice(
        /"""([^"\\]|\\(.|\n)|"[^"\\]|""[^"\\]|"\\(.|\n)|""\\(.|\n))*"""/,
        /"([^"\\\n]|\\(.|\n))*"/,
      )), $.code_text)),
    ),
    list: $ => seq('[', commaSep($._expression), ']'),
    // `{ "tests.py": tests }`: keys are string literals
    map: $ => seq('{', commaSep($.map_entry), '}'),
    map_entry: $ => seq(field('key', $.string), ':', field('value', $._expression)),

    _number: $ => choice($.integer, $.float, $.duration),
    integer: _ => /[0-9][0-9_]*/,
    float: _ => /[0-9][0-9_]*\.[0-9]+/,
    duration: _ => /[0-9][0-9_]*(\.[0-9]+)?(ms|s|m|h)/,
    boolean: _ => choice('true', 'false'),

    // Strings: `"…"` on one line or `"""…"""` across lines, with `{name}`
    // and `{name.field}` interpolations and `\` escapes.
    string: $ => choice(
      seq(
        '"',
        repeat(choice(
          alias(token.immediate(prec(1, /[^"\\{\n]+/)), $.string_content),
          $.escape_sequence,
          $.interpolation,
        )),
        token.immediate('"'),
      ),
      seq(
        '"""',
        repeat(choice(
          alias(token.immediate(prec(1, /([^"\\{]|"[^"\\{]|""[^"\\{])+/)), $.string_content),
          alias(token.immediate(/""?/), $.string_content),
          $.escape_sequence,
          $.interpolation,
        )),
        token.immediate('"""'),
      ),
    ),
    escape_sequence: _ => token.immediate(/\\(.|\n)/),
    interpolation: $ => seq(
      token.immediate('{'),
      field('path', alias(token.immediate(/[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/), $.interpolation_path)),
      token.immediate('}'),
    ),

    // ─── tests ───────────────────────────────────────────────────────────

    test_declaration: $ => seq(
      kw('test'),
      field('name', $.string),
      field('body', $.test_body),
    ),
    test_body: $ => seq('{', repeat($.test_property), '}'),
    test_property: $ => choice(
      seq(prop($, 'run'), $._callable),
      seq(prop($, 'with'), $._callable),
      seq(prop($, 'expect'), $.expectation, repeat(seq(',', $.expectation))),
    ),
    expectation: $ => choice(
      seq('calls', field('operator', choice('<=', '==', '>=', '<', '>')), field('count', $.integer)),
      seq('satisfies', $._guard_expression),
      field('outcome', $.identifier),
    ),

    identifier: _ => NAME,
  },
});

for (const word of KEYWORDS) {
  if (!usedKeywords.has(word)) throw new Error(`keyword '${word}' is listed but never used`);
}
for (const name of PROPERTIES) {
  if (!usedProperties.has(name)) throw new Error(`property ':${name}' is listed but never used`);
}

module.exports = guardflow;
