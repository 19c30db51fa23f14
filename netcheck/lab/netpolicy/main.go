// Command netcheck-lab-netpol enforces NetworkPolicies on one node of the lab's Kubernetes.
//
// The enforcer is kube-network-policies (sigs.k8s.io/kube-network-policies, pinned in go.mod):
// its controller watches pods, namespaces and NetworkPolicies, installs its nftables table in
// the node's network namespace and decides the first packet of every connection from or to a
// pod of this node that a policy selects, through NFQUEUE. This file only starts it as its own
// command does, with two differences the lab needs: the API server and credentials come from a
// kubeconfig context (the lab's nodes have no in-cluster service account), and the packets
// reach its NFQUEUE through an iptables rule the lab adds (netcheck/lab/control_plane.py says
// why).
//
// NRI stays enabled although no runtime serves it here: v0.8.0 with NRI disabled dereferences
// a nil plugin for any packet whose address is no pod of the cluster (a pod of the other
// cluster, a node) and crashes; enabled, its plugin fails to connect, says so once, and that
// lookup answers "no pod". So that it never registers with a real runtime, this command
// refuses to start where an NRI socket exists.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

const nriSocket = "/var/run/nri/nri.sock" // NRI's default socket (github.com/containerd/nri)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file of the lab")
	contextName := flag.String("context", "", "its context for this cluster")
	node := flag.String("node", "", "the Node this enforcer runs on")
	queue := flag.Int("nfqueue-id", 100, "NFQUEUE number")
	klog.InitFlags(nil)
	flag.Parse()
	if *kubeconfig == "" || *contextName == "" || *node == "" {
		fmt.Fprintln(os.Stderr, "netcheck-lab-netpol: --kubeconfig, --context and --node are required")
		os.Exit(2)
	}

	if _, err := os.Stat(nriSocket); err == nil {
		fmt.Fprintf(os.Stderr, "netcheck-lab-netpol: %s exists: a container runtime serves NRI here, and the lab's enforcer must not register with it\n", nriSocket)
		os.Exit(2)
	}

	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: *kubeconfig}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: *contextName}
	config, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		klog.Fatalf("kubeconfig %s, context %s: %v", *kubeconfig, *contextName, err)
	}
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		klog.Fatalf("client: %v", err)
	}
	factory := informers.NewSharedInformerFactory(clientset, 0)
	controller, err := networkpolicy.NewController(
		clientset,
		factory.Networking().V1().NetworkPolicies(),
		factory.Core().V1().Namespaces(),
		factory.Core().V1().Pods(),
		nil, nil, nil, nil, // no AdminNetworkPolicy or BaselineAdminNetworkPolicy
		networkpolicy.Config{
			// the kernel lets a packet through when the enforcer's queue is full, rather than
			// dropping it: under the load of a test run (raw probes send many new connections)
			// an overflowing queue would invent packet loss that no policy asked for
			FailOpen:    true,
			QueueID:     *queue,
			NodeName:    *node,
			NRIdisabled: false, // see above
		},
	)
	if err != nil {
		klog.Fatalf("controller: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		if err := controller.Run(ctx); err != nil {
			klog.Errorf("controller stopped: %v", err)
			stop()
		}
	}()
	factory.Start(ctx.Done())
	<-ctx.Done()
	time.Sleep(2 * time.Second) // the controller removes its nftables table on the way out
}
