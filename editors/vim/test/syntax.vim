" Headless test of the Vim syntax, filetype detection and ftplugin:
"   vim -Nu NONE -i NONE -es -S editors/vim/test/syntax.vim -- editors/test/sample.guardflow
" Run from the repository root. Each check finds a pattern in the sample
" file (searching on from the previous match) and compares the syntax
" group at its first character, or at the character marked by \zs.
" Failures go to stderr and make Vim exit non-zero.

let s:errors = []
let s:root = fnamemodify(expand('<sfile>:p'), ':h:h')
execute 'set runtimepath^=' . fnameescape(s:root)
filetype plugin on
syntax on

execute 'edit ' . fnameescape(argv(0))
if &filetype !=# 'guardflow'
  call add(s:errors, 'filetype is "' . &filetype . '", not "guardflow"')
endif
if &commentstring !=# '// %s'
  call add(s:errors, 'commentstring is "' . &commentstring . '"')
endif

function! s:expect(pattern, group) abort
  " the first search may match at the cursor (line 1, column 1)
  let [l:line, l:col] = searchpos(a:pattern, s:first ? 'cW' : 'W')
  let s:first = 0
  if l:line == 0
    call add(s:errors, 'not found after line ' . line('.') . ': ' . a:pattern)
    return
  endif
  let l:got = synIDattr(synID(l:line, l:col, 1), 'name')
  if l:got !=# a:group
    call add(s:errors, printf('%d:%d %s: expected %s, got %s', l:line, l:col, a:pattern, a:group, l:got))
  endif
endfunction

call cursor(1, 1)
let s:first = 1
call s:expect('^//', 'guardflowComment')
call s:expect('^////', 'guardflowComment')
call s:expect('\<use\>', 'guardflowImport')
call s:expect('\<std\>', 'guardflowKeyword')
call s:expect(':default-retry', 'guardflowProperty')
call s:expect('2', 'guardflowNumber')
call s:expect('^///', 'guardflowDocComment')
call s:expect('\<type\>', 'guardflowDeclaration')
call s:expect('Source', 'guardflowTypeName')
call s:expect('steps', 'guardflowLabel')
call s:expect('Low', 'guardflowType')
call s:expect('|', 'guardflowOperator')
call s:expect('\<input\>', 'guardflowDeclaration')
call s:expect('budget', 'guardflowConstantName')
call s:expect('90s', 'guardflowDuration')
call s:expect('true', 'guardflowBoolean')
call s:expect('\<resource\>', 'guardflowDeclaration')
call s:expect('gpu', 'guardflowConstantName')
call s:expect('\<generator\>', 'guardflowDeclaration')
call s:expect('coder', 'guardflowFunctionName')
call s:expect('llm', 'guardflowCall')
call s:expect('"qwen', 'guardflowString')
call s:expect('0\.2', 'guardflowNumber')
call s:expect('\<extern\>', 'guardflowDeclaration')
call s:expect('lint', 'guardflowFunctionName')
call s:expect('\<on\>', 'guardflowKeyword')
call s:expect('Code', 'guardflowType')
call s:expect('fixed', 'guardflowFunctionName')
call s:expect('&&', 'guardflowOperator')
call s:expect('command', 'guardflowCall')
call s:expect('60s', 'guardflowDuration')
call s:expect('!', 'guardflowOperator')
call s:expect('\<action\>', 'guardflowDeclaration')
call s:expect('fix', 'guardflowFunctionName')
call s:expect('->', 'guardflowOperator')
call s:expect(':role', 'guardflowProperty')
call s:expect('{code}', 'guardflowInterpolation')
call s:expect('\\"', 'guardflowEscape')
call s:expect(':generate', 'guardflowProperty')
call s:expect('"""', 'guardflowTripleString')
call s:expect('Fix this', 'guardflowTripleString')
call s:expect('{plan.steps}', 'guardflowInterpolation')
call s:expect('{code}', 'guardflowInterpolation')
call s:expect('"quoted"', 'guardflowTripleString')
call s:expect('\\{', 'guardflowEscape')
call s:expect('^    """', 'guardflowTripleString')
call s:expect(':pre\>', 'guardflowProperty')
call s:expect('all', 'guardflowCombinator')
call s:expect('any', 'guardflowCombinator')
call s:expect(':guard', 'guardflowProperty')
call s:expect('fixed', 'guardflowCall')
call s:expect('||', 'guardflowOperator')
call s:expect('majority', 'guardflowCombinator')
call s:expect(':feedback', 'guardflowProperty')
call s:expect('last', 'guardflowConstant')
call s:expect(':max-tokens', 'guardflowProperty')
call s:expect('2_000', 'guardflowNumber')
call s:expect('1\.5m', 'guardflowDuration')
call s:expect(':p\>', 'guardflowProperty')
call s:expect('\*', 'guardflowOperator')
call s:expect('\<task\>', 'guardflowDeclaration')
call s:expect('repair', 'guardflowFunctionName')
call s:expect('\<method\>', 'guardflowDeclaration')
call s:expect('first', 'guardflowFunctionName')
call s:expect(':subtasks', 'guardflowProperty')
call s:expect('\<t:', 'guardflowLabel')
call s:expect(':escalate-to', 'guardflowProperty')
call s:expect('after', 'guardflowKeyword')
call s:expect(':max-escalations', 'guardflowProperty')
call s:expect(';', 'guardflowOperator')
call s:expect(':on-fail', 'guardflowProperty')
call s:expect('continue', 'guardflowConstant')
call s:expect('\<test\>', 'guardflowDeclaration')
call s:expect('"repair', 'guardflowString')
call s:expect(':with', 'guardflowProperty')
call s:expect(':expect', 'guardflowProperty')
call s:expect('success', 'guardflowOutcome')
call s:expect('calls', 'guardflowExpectKeyword')
call s:expect('<=', 'guardflowOperator')
call s:expect('satisfies', 'guardflowExpectKeyword')

" An unknown property, and `:guard` not mistaken for the `guard` keyword.
call setline(line('$') + 1, ['action a() -> T {', '  :prefix 1', '  :pre-guard x', '  :guard ok', '}', 'success'])
call s:expect(':prefix', 'guardflowUnknownProperty')
call s:expect(':pre-guard', 'guardflowProperty')
call s:expect('guard x', 'guardflowProperty')
call s:expect('x', '')
call s:expect('ok', '')
call s:expect('^success', '')

" A code literal: verbatim, so neither {y} nor \n means anything and \"""
" closes it; a string after it is a string again.
call setline(line('$') + 1, ['input s: Code<python> = python"""', '  x = "{y}" + "\n" + "\"""', 'input t: Text = "{s} \n"'])
call s:expect('python"""', 'guardflowCodeLanguage')
call s:expect('"""', 'guardflowCode')
call s:expect('{y}', 'guardflowCode')
call s:expect('\\n', 'guardflowCode')
call s:expect('\\"""', 'guardflowCode')
call s:expect('^input', 'guardflowDeclaration')
call s:expect('{s}', 'guardflowInterpolation')
call s:expect('\\n', 'guardflowEscape')

if empty(s:errors)
  qall!
endif
call writefile(s:errors, '/dev/stderr')
cquit
