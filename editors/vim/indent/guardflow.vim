" Vim indent file
" Language: Guardflow
" One level (shiftwidth) per open bracket; a line after a trailing `=`,
" and one starting with `&&` or `||`, one level more (as `guardflow fmt`
" lays them out).
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

" Whether a line starts inside a """ string.
function! s:InTripleString(lnum) abort
  return index(map(synstack(a:lnum, 1), 'synIDattr(v:val, "name")'), 'guardflowTripleString') >= 0
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
    if l:c =~# '[][(){}]' && s:Syntax(a:lnum, l:i + 1) !~# 'String\|Interpolation\|Escape\|Comment'
      let l:net += l:c =~# '[[({]' ? 1 : -1
    endif
  endfor
  return l:net
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
  let l:net = s:NetBrackets(l:prev) + (s:StartsWithCloser(l:prev) ? 1 : 0)
  let l:ind = indent(l:prev) + l:sw * l:net
  if s:StartsWithCloser(a:lnum)
    let l:ind -= l:sw
  endif
  if s:EndsWithEquals(l:prev)
    let l:ind += l:sw
  elseif s:StartsWithOperator(a:lnum) && !s:IsContinuation(l:prev)
    " `:guard a` then `&& b`: the operator line one level deeper
    let l:ind += l:sw
  elseif s:IsContinuation(l:prev) && !s:StartsWithOperator(a:lnum)
    let l:ind -= l:sw
  endif
  return max([l:ind, 0])
endfunction

let &cpo = s:cpo_save
unlet s:cpo_save
