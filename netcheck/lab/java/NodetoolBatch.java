package org.apache.cassandra.tools;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * Several nodetool commands in one JVM, for the lab.
 *
 * The lab's Cassandra pods share this machine's cores, and a JVM start per nodetool command was
 * most of a run's time there. This runs each command through nodetool's own entry point
 * (NodeTool.execute, what `nodetool` runs), in the package of NodeProbeFactory (not public),
 * and frames each command's output for the caller:
 *
 *   @@netcheck-begin COMMAND
 *   its stdout
 *   @@netcheck-stderr
 *   its stderr
 *   @@netcheck-end EXIT_CODE
 *
 * Arguments: HOST PORT COMMAND... (a command's words separated by single spaces).
 */
public final class NodetoolBatch {
    private NodetoolBatch() {}

    public static void main(String[] args) {
        if (args.length < 3) {
            System.err.println("usage: NodetoolBatch HOST PORT COMMAND...");
            System.exit(2);
        }
        for (int i = 2; i < args.length; i++) {
            String[] words = args[i].split(" ");
            String[] argv = new String[words.length + 4];
            argv[0] = "-h";
            argv[1] = args[0];
            argv[2] = "-p";
            argv[3] = args[1];
            System.arraycopy(words, 0, argv, 4, words.length);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int code;
            try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
                 PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
                try {
                    code = new NodeTool(new NodeProbeFactory(), new Output(o, e)).execute(argv);
                } catch (RuntimeException ex) {
                    e.println("error: " + ex);
                    code = 1;
                }
            }
            System.out.println("@@netcheck-begin " + args[i]);
            System.out.print(lines(out));
            System.out.println("@@netcheck-stderr");
            System.out.print(lines(err));
            System.out.println("@@netcheck-end " + code);
        }
        System.out.flush();
        System.exit(0);
    }

    /** The text, ending in a newline when it is not empty (the next frame line starts anew). */
    private static String lines(ByteArrayOutputStream buffer) {
        String text = buffer.toString(StandardCharsets.UTF_8);
        return text.isEmpty() || text.endsWith("\n") ? text : text + "\n";
    }
}
