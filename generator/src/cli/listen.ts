import type { CommandModule } from 'yargs';

// Placeholder so main.ts compiles; the listener helper replaces it with the real command.
export const command: CommandModule<object, object> = {
  command: 'listen',
  describe: 'listen (not implemented yet)',
  handler: () => {
    process.stderr.write('listen: not implemented yet\n');
    process.exitCode = 1;
  },
};
