import type { CommandModule } from 'yargs';

// Placeholder so main.ts compiles; the listener helper replaces it with the real command.
export const command: CommandModule<object, object> = {
  command: 'status',
  describe: 'status (not implemented yet)',
  handler: () => {
    process.stderr.write('status: not implemented yet\n');
    process.exitCode = 1;
  },
};
