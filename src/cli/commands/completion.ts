/**
 * `comms completion [bash|zsh]`: prints a script that asks `comms --get-yargs-completions` for the
 * words that can follow (commands, then each command's options), as yargs answers them.
 */
import type { Argv } from 'yargs';
import { UsageError } from '../../errors.ts';
import type { Output } from '../output.ts';

export interface CompletionArgs {
  json: boolean;
  verbose: boolean;
  shell?: string;
}

const SHELLS = ['bash', 'zsh'] as const;
type Shell = (typeof SHELLS)[number];

export function completionBuilder(y: Argv) {
  return (
    y
      .positional('shell', { type: 'string', choices: SHELLS, describe: 'The shell (default: the one $SHELL names)' })
      .option('json', { type: 'boolean', default: false, hidden: true })
      .option('verbose', { type: 'boolean', default: false, hidden: true })
      .example('$0 completion bash >> ~/.bashrc', 'complete comms commands and options in bash')
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a zsh expression the user types, not a template
      .example('$0 completion zsh > "${fpath[1]}/_comms"', 'in zsh')
  );
}

export async function runCompletion(args: CompletionArgs, _out: Output): Promise<number> {
  process.stdout.write(completionScript(pickShell(args.shell)));
  return 0;
}

function pickShell(shell: string | undefined, env: NodeJS.ProcessEnv = process.env): Shell {
  if (shell !== undefined) return shell as Shell;
  const fromEnv = (env['SHELL'] ?? '').split('/').pop() ?? '';
  if ((SHELLS as readonly string[]).includes(fromEnv)) return fromEnv as Shell;
  throw new UsageError(`name the shell: comms completion bash, or comms completion zsh ($SHELL is ${JSON.stringify(env['SHELL'] ?? '')})`);
}

export function completionScript(shell: Shell): string {
  return shell === 'bash' ? BASH : ZSH;
}

// Adapted from the scripts yargs generates (completion-templates.js). zsh gets `ZSH_NAME=zsh`
// so that yargs answers with descriptions even when the login shell is not zsh.
const BASH = `###-begin-comms-completions-###
# bash completion for comms; install: comms completion bash >> ~/.bashrc
_comms_completions()
{
    local cur_word args type_list
    cur_word="\${COMP_WORDS[COMP_CWORD]}"
    args=("\${COMP_WORDS[@]}")
    mapfile -t type_list < <(comms --get-yargs-completions "\${args[@]}" 2>/dev/null)
    mapfile -t COMPREPLY < <(compgen -W "$( printf '%q ' "\${type_list[@]}" )" -- "\${cur_word}")
    return 0
}
complete -o bashdefault -o default -F _comms_completions comms
###-end-comms-completions-###
`;

const ZSH = `#compdef comms
###-begin-comms-completions-###
# zsh completion for comms; install: comms completion zsh > "\${fpath[1]}/_comms" (or source it from ~/.zshrc)
_comms_completions()
{
  local reply
  local si=$IFS
  IFS=$'\\n' reply=($(ZSH_NAME=zsh COMP_CWORD="$((CURRENT-1))" COMP_LINE="$BUFFER" COMP_POINT="$CURSOR" comms --get-yargs-completions "\${words[@]}" 2>/dev/null))
  IFS=$si
  if [[ \${#reply} -gt 0 ]]; then
    _describe 'values' reply
  else
    _default
  fi
}
if [[ "\${zsh_eval_context[-1]}" == "loadautofunc" ]]; then
  _comms_completions "$@"
else
  compdef _comms_completions comms
fi
###-end-comms-completions-###
`;
