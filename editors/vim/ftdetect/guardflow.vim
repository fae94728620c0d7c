" Guardflow files: *.guardflow
autocmd BufRead,BufNewFile *.guardflow setfiletype guardflow
