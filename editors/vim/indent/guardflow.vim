" Vim indent file
" Language: Guardflow
" One level (shiftwidth) per open bracket, a closing bracket level with
" the line that opened it; a line after a trailing `=`, and the first one
" starting with `&&` or `||`, one level more; after an expression, back to
" the line it belongs to (as `guardflow fmt` lays them out).
" Lines inside a """ string keep their indentation.

if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal autoindent
setlocal indentexpr=GuardflowIndent(v:lnum)
setlocal indentkeys=0{,0},0),0],!^F,o,O,e,0=&&,0=\|\|
let b:undo_indent = 'setlocal autoindent< indentexpr< indentkeys<'

if exists('*GuardflowIndent')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

function! s:Syntax(lnum, col) abort
  return synIDattr(synID(a:lnum, a:col, 0), 'name')
endfunction

" Whether a line starts inside a """ string or code literal opened on an
" earlier line: the end of the line before it is inside one (the syntax
" engine syncs from the start, so this is one lookup, not a count of
" every delimiter above; a line that starts with the opening delimiter is
" outside).
function! s:InTripleString(lnum) abort
  if a:lnum <= 1
    return 0
  endif
  let l:p = a:lnum - 1
  for l:id in synstack(l:p, col([l:p, '$']))
    if synIDattr(l:id, 'name') =~# '^guardflow\%(TripleString\|Code\)$'
      return 1
    endif
  endfor
  return 0
endfunction

" The code of a line without its trailing comment and spaces.
function! s:Code(lnum) abort
  return substitute(getline(a:lnum), '\s*//.*$', '', '')
endfunction

" The previous line that starts outside a """ string.
function! s:PrevCode(lnum) abort
  let l:p = prevnonblank(a:lnum - 1)
  while l:p > 0 && s:InTripleString(l:p)
    let l:p = prevnonblank(l:p - 1)
  endwhile
  return l:p
endfunction

function! s:StartsWithCloser(lnum) abort
  return getline(a:lnum) =~# '^\s*[})\]]'
endfunction

function! s:StartsWithOperator(lnum) abort
  return getline(a:lnum) =~# '^\s*\%(&&\|||\)'
endfunction

function! s:EndsWithEquals(lnum) abort
  return a:lnum > 0 && s:Code(a:lnum) =~# '[^=!<>]=\s*$'
endfunction

function! s:IsContinuation(lnum) abort
  return s:StartsWithOperator(a:lnum) || s:EndsWithEquals(s:PrevCode(a:lnum))
endfunction

" Brackets opened minus brackets closed on a line, outside strings and
" comments.
function! s:NetBrackets(lnum) abort
  let l:line = getline(a:lnum)
  let l:net = 0
  for l:i in range(len(l:line))
    let l:c = l:line[l:i]
    if l:c =~# '[][(){}]' && s:Syntax(a:lnum, l:i + 1) !~# 'String\|Code\|Interpolation\|Escape\|Comment'
      let l:net += l:c =~# '[[({]' ? 1 : -1
    endif
  endfor
  return l:net
endfunction

" The line that opened the bracket `lnum` starts with (0: none).
function! s:Opener(lnum) abort
  let l:save = getpos('.')
  call cursor(a:lnum, match(getline(a:lnum), '\S') + 1)
  let l:skip = 's:Syntax(line("."), col(".")) =~# "String\\|Code\\|Interpolation\\|Escape\\|Comment"'
  let l:found = searchpair('[[({]', '', '[])}]', 'bnW', l:skip)
  call setpos('.', l:save)
  return l:found
endfunction

" The first line of the expression `lnum` continues: back over operator
" lines and over whole bracket groups.
function! s:Head(lnum) abort
  let l:l = a:lnum
  let l:guard = 0
  while l:l > 0 && l:guard < 1000
    let l:guard += 1
    if s:StartsWithCloser(l:l) && s:NetBrackets(l:l) < 0
      let l:o = s:Opener(l:l)
      if l:o <= 0
        break
      endif
      let l:l = l:o
    elseif s:StartsWithOperator(l:l)
      let l:l = s:PrevCode(l:l)
    else
      break
    endif
  endwhile
  return l:l
endfunction

function! GuardflowIndent(lnum) abort
  if s:InTripleString(a:lnum)
    return -1
  endif
  let l:prev = s:PrevCode(a:lnum)
  if l:prev == 0
    return 0
  endif
  let l:sw = shiftwidth()
  " a closing bracket lines up with the line that opened it
  if s:StartsWithCloser(a:lnum)
    let l:open = s:Opener(a:lnum)
    if l:open > 0
      return indent(l:open)
    endif
  endif
  " after a line that closes a group, continue from the line that opened it
  let l:ref = l:prev
  let l:net = s:NetBrackets(l:prev)
  if s:StartsWithCloser(l:prev)
    let l:open = s:Opener(l:prev)
    if l:open > 0
      let l:ref = l:open
      let l:net = s:NetBrackets(l:open) + s:NetBrackets(l:prev)
    endif
  endif
  if l:net != 0
    " inside a bracket just opened: one level deeper
    return max([indent(l:ref) + l:sw * l:net, 0])
  endif
  if s:EndsWithEquals(l:ref)
    " the first operand after `name =`
    return indent(l:ref) + l:sw
  endif
  if s:StartsWithOperator(a:lnum)
    " `&& b`: one level under its first operand, then level with it
    return s:StartsWithOperator(l:ref) ? indent(l:ref) : indent(l:ref) + l:sw
  endif
  if s:StartsWithOperator(l:ref) || s:EndsWithEquals(s:PrevCode(l:ref))
    " the expression ended: back to the line it belongs to
    let l:head = s:Head(l:ref)
    let l:before = s:PrevCode(l:head)
    return s:EndsWithEquals(l:before) ? indent(l:before) : indent(l:head)
  endif
  return indent(l:ref)
endfunction

let &cpo = s:cpo_save
unlet s:cpo_save
