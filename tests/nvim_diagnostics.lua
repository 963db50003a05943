-- Driven by tests/test_editors.py: Neovim, headless, with editors/nvim/lua/netc.lua; writes the
-- diagnostics the buffer received to $NETC_OUT as JSON, then quits.
vim.opt.runtimepath:prepend(vim.env.NETC_NVIM_DIR)
require("netc").setup({ cmd = { vim.env.NETC_PYTHON, "-m", "netc", "lsp" } })
vim.cmd("edit " .. vim.env.NETC_SPEC)
local buf = vim.api.nvim_get_current_buf()
local ok = vim.wait(30000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
local out = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  table.insert(out, { lnum = d.lnum, col = d.col, message = d.message, source = d.source, code = d.code })
end
vim.fn.writefile({ vim.fn.json_encode({ ok = ok, diagnostics = out, filetype = vim.bo[buf].filetype }) }, vim.env.NETC_OUT)
vim.cmd("qa!")
