/* cli.h: the subcommands of the `ipr` binary. Each takes argv with argv[0] = the subcommand name
 * and returns the process exit code (see README "Exit codes"). */
#ifndef IPR_CLI_H
#define IPR_CLI_H

#define IPR_EXIT_OK 0
#define IPR_EXIT_USAGE 1   /* bad arguments, config or input files: nothing was run */
#define IPR_EXIT_FAILED 2  /* finished, but some work failed */
#define IPR_EXIT_INTERRUPTED 3
#define IPR_EXIT_VERIFY 4
#define IPR_EXIT_STORAGE 5 /* a write, fsync, rename or close of an output failed (disk full, I/O error): what was
                            * committed before stays, nothing half-written counts; run the command again */

int ipr_cmd_datagen(int argc, char **argv);
int ipr_cmd_forward(int argc, char **argv);
int ipr_cmd_bench(int argc, char **argv);
int ipr_cmd_sample(int argc, char **argv);
/* the evaluation pipeline (src/pipeline) */
int ipr_cmd_run(int argc, char **argv);
int ipr_cmd_plan(int argc, char **argv);
int ipr_cmd_status(int argc, char **argv);
int ipr_cmd_merge(int argc, char **argv);
int ipr_cmd_bundle(int argc, char **argv);
int ipr_cmd_verify(int argc, char **argv);

/* Print the recorded error as "ipr CMD: error: ..." and return IPR_EXIT_USAGE. */
int ipr_cli_fail(const char *cmd);
/* A usage error: the recorded error, then "see `ipr CMD --help`" (not the whole help); returns IPR_EXIT_USAGE. */
int ipr_cli_usage_error(const char *cmd);

#endif
