" Vim syntax file
" Language:    Guardflow (workflow language for LLM work)
" Filenames:   *.guardflow
" Keywords, properties and contextual words follow grammar/guardflow.pest;
" tests/editors.rs checks that the lists agree.

if exists('b:current_syntax')
  finish
endif
let s:cpo_save = &cpo
set cpo&vim

syntax case match

" Names, calls and types. Defined first: later items win where several
" match at the same position.
syntax match guardflowCall /\<\h\w*\ze\s*(/
syntax match guardflowType /\<\u\w*\>/
syntax match guardflowLabel /\<\h\w*\ze:\%(\s\|$\)/

" Keywords (src/syntax/lexer.rs KEYWORDS)
syntax keyword guardflowImport use
syntax keyword guardflowDeclaration input type generator guard extern effect action task method resource test
syntax keyword guardflowKeyword std on after for in max
syntax keyword guardflowBoolean true false

" Names being defined
syntax match guardflowFunctionName /\%(\%([:-]\)\@1<!\<\%(action\|task\|guard\|generator\|effect\|method\)\s\+\)\@<=\h\w*/
syntax match guardflowTypeName /\%(\%([:-]\)\@1<!\<type\s\+\)\@<=\h\w*/
syntax match guardflowConstantName /\%(\<\%(input\|resource\)\s\+\)\@<=\h\w*/

" Guard combinators
syntax match guardflowCombinator /\<\%(all\|any\|majority\|par\)\ze\s*(/

" Numbers and durations
syntax match guardflowNumber /\<\d[0-9_]*\%(\.\d\+\)\=\>/
syntax match guardflowDuration /\<\d[0-9_]*\%(\.\d\+\)\=\%(ms\|s\|m\|h\)\>/

" Operators
syntax match guardflowOperator /->\|&&\|||\|[<>=]=\|[!|*=<>;]/

" Properties: `:name` not preceded by a name or a closing bracket; a name
" the grammar does not know is an error.
syntax match guardflowUnknownProperty /\%(^\|[^[:alnum:]_)\]-]\)\@1<=:\a[[:alnum:]_-]*/
syntax match guardflowProperty /\%(^\|[^[:alnum:]_)\]-]\)\@1<=:\%(default-max-tokens\|default-p\|default-retry\|default-timeout\|effect\|escalate-to\|expect\|feedback\|generate\|guard\|history\|idempotent\|max-depth\|max-escalations\|max-tokens\|on-fail\|ordering\|p\|parallel\|pre\|pre-guard\|result\|retry\|role\|run\|shared\|strategy\|subtasks\|timeout\|uses\|with\)\%([[:alnum:]_-]\)\@!/

" Words with a meaning only after their property
syntax match guardflowConstant /\%(:feedback\s\+\)\@<=\%(last\|all\)\>/
syntax match guardflowConstant /\%(:on-fail\s\+\)\@<=\%(cancel\|continue\)\>/
syntax match guardflowConstant /\%(:strategy\s\+\)\@<=\%(repair\|resample\|best-of\)\>/
syntax match guardflowConstant /\%(:history\s\+\)\@<=\%(keep\|fresh\)\>/
syntax region guardflowExpect matchgroup=guardflowProperty start=/\%(^\|\s\)\@1<=:expect\>/ end=/$/ oneline contains=guardflowOutcome,guardflowExpectKeyword,guardflowCall,guardflowCombinator,guardflowString,guardflowNumber,guardflowOperator,guardflowComment,guardflowDocComment
syntax keyword guardflowOutcome success failure contained
syntax keyword guardflowExpectKeyword calls satisfies contained

" Strings: "…" on one line, """…""" across lines, with {name.path}
" interpolation and \ escapes.
syntax match guardflowEscape /\\\_./ contained
syntax match guardflowBadInterpolation /{[^}"]*}\=/ contained
syntax match guardflowInterpolation /{\h\w*\%(\.\h\w*\)*}/ contained
syntax region guardflowString start=/"/ skip=/\\\\\|\\"/ end=/"\|$/ contains=guardflowEscape,guardflowBadInterpolation,guardflowInterpolation
syntax region guardflowTripleString start=/"""/ skip=/\\\\\|\\"/ end=/"""/ contains=guardflowEscape,guardflowBadInterpolation,guardflowInterpolation fold
" Code literals, `python"""…"""`: the language names a type; the text is
" verbatim (no escapes, no interpolations), so the first """ closes it.
syntax match guardflowCodeLanguage /\<\h\w*\ze"""/ nextgroup=guardflowCode
syntax region guardflowCode start=/"""/ end=/"""/ contained fold

" Comments: `///` documents the item that follows, `//` (and `////`) does not.
syntax keyword guardflowTodo TODO FIXME XXX NOTE contained
syntax match guardflowComment "//.*$" contains=guardflowTodo,@Spell
syntax match guardflowDocComment "///\%(/\)\@!.*$" contains=guardflowTodo,@Spell

" """ strings span lines: always parse from the start (files are small)
syntax sync fromstart

" Blocks fold
syntax region guardflowBlock start=/{/ end=/}/ transparent fold

highlight default link guardflowCall Function
highlight default link guardflowType Type
highlight default link guardflowLabel Identifier
highlight default link guardflowImport Include
highlight default link guardflowDeclaration Keyword
highlight default link guardflowKeyword Keyword
highlight default link guardflowBoolean Boolean
highlight default link guardflowFunctionName Function
highlight default link guardflowTypeName Type
highlight default link guardflowConstantName Constant
highlight default link guardflowCombinator Special
highlight default link guardflowNumber Number
highlight default link guardflowDuration Number
highlight default link guardflowOperator Operator
highlight default link guardflowUnknownProperty Error
highlight default link guardflowProperty PreProc
highlight default link guardflowConstant Constant
highlight default link guardflowOutcome Constant
highlight default link guardflowExpectKeyword Keyword
highlight default link guardflowEscape SpecialChar
highlight default link guardflowBadInterpolation Error
highlight default link guardflowInterpolation Identifier
highlight default link guardflowString String
highlight default link guardflowTripleString String
highlight default link guardflowCodeLanguage Type
highlight default link guardflowCode String
highlight default link guardflowTodo Todo
highlight default link guardflowComment Comment
highlight default link guardflowDocComment SpecialComment

let b:current_syntax = 'guardflow'
let &cpo = s:cpo_save
unlet s:cpo_save
