-- netc for Neovim: starts `netc lsp` for YAML buffers (the server checks only specs: a top-level
-- `netc:` key, the schema modeline, or a *.netc.yaml name) with the built-in LSP client.
--
--   require("netc").setup()                                  -- `netc` on PATH
--   require("netc").setup({ cmd = { ".venv/bin/netc", "lsp" } })
--
-- Works with Neovim 0.7 (vim.lsp.start_client) and later (vim.lsp.start).
local M = {}

local defaults = {
  cmd = { "netc", "lsp" },
  filetypes = { "yaml" },
  init_options = {}, -- e.g. { debounceMs = 150, checkBudgetMs = 2000, allFiles = false }
  root_markers = { "pyproject.toml", ".git" },
}

local function root_dir(bufnr, markers)
  local name = vim.api.nvim_buf_get_name(bufnr)
  local dir = name ~= "" and vim.fn.fnamemodify(name, ":p:h") or vim.fn.getcwd()
  for _, marker in ipairs(markers) do
    local found = vim.fn.finddir(marker, dir .. ";")
    if found == "" then
      found = vim.fn.findfile(marker, dir .. ";")
    end
    if found ~= "" then
      return vim.fn.fnamemodify(found, ":p:h:h")
    end
  end
  return dir
end

function M.setup(opts)
  local cfg = vim.tbl_deep_extend("force", defaults, opts or {})
  -- *.netc.yaml is YAML
  vim.cmd([[autocmd BufRead,BufNewFile *.netc.yaml,*.netc.yml setfiletype yaml]])
  local client_id = nil
  local group = vim.api.nvim_create_augroup("netc_lsp", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = cfg.filetypes,
    callback = function(args)
      local config = {
        name = "netc",
        cmd = cfg.cmd,
        root_dir = root_dir(args.buf, cfg.root_markers),
        init_options = cfg.init_options,
      }
      if vim.lsp.start then -- Neovim 0.8+: reuses a running client with the same name and root
        vim.lsp.start(config, { bufnr = args.buf })
        return
      end
      if client_id == nil or vim.lsp.get_client_by_id(client_id) == nil then
        client_id = vim.lsp.start_client(config)
      end
      if client_id then
        vim.lsp.buf_attach_client(args.buf, client_id)
      end
    end,
  })
end

return M
