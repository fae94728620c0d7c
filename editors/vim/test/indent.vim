" Headless test of the Vim indent file: re-indenting each file given
" changes nothing (they are written in the canonical layout).
"   vim -Nu NONE -i NONE -es -S editors/vim/test/indent.vim -- FILE...
let s:errors = []
let s:root = fnamemodify(expand('<sfile>:p'), ':h:h')
execute 'set runtimepath^=' . fnameescape(s:root)
filetype plugin indent on
syntax on

for s:file in argv()
  execute 'edit! ' . fnameescape(s:file)
  let s:before = getline(1, '$')
  " flatten every line outside """ strings, then indent again
  let s:flat = []
  for s:lnum in range(1, line('$'))
    let s:names = map(synstack(s:lnum, 1), 'synIDattr(v:val, "name")')
    let s:in_string = index(s:names, 'guardflowTripleString') >= 0 || index(s:names, 'guardflowCode') >= 0
    call add(s:flat, s:in_string ? getline(s:lnum) : substitute(getline(s:lnum), '^\s*', '', ''))
  endfor
  call setline(1, s:flat)
  normal! gg=G
  let s:after = getline(1, '$')
  for s:lnum in range(len(s:before))
    if s:after[s:lnum] !=# s:before[s:lnum]
      call add(s:errors, printf('%s:%d: expected %s, got %s', s:file, s:lnum + 1,
            \ string(s:before[s:lnum]), string(s:after[s:lnum])))
      break
    endif
  endfor
  set nomodified
endfor

if empty(s:errors)
  qall!
endif
call writefile(s:errors, '/dev/stderr')
cquit
